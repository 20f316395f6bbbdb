"""A run's latency waterfall: each model call and step as a bar on the run's own clock.

A step's bar is split into what took its time: the policy (budget and decision), the
wait for a person, and the tool. Times come from the stored instants and stage timings,
never from what a model reports about itself, so the bars are in the order things ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from proctor.runs.views import ApprovalView, ModelCallView, RunView, StepView

SegmentKind = Literal["model", "policy", "wait", "tool", "other"]


@dataclass(frozen=True)
class Segment:
    kind: SegmentKind
    start_s: float
    """Seconds from the run's start."""
    end_s: float

    @property
    def took_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Row:
    label: str
    anchor: str
    """The timeline entry it stands for (``step-3``, ``model-mc_…``)."""
    start_s: float
    end_s: float
    segments: tuple[Segment, ...]
    open: bool = False
    """Still going (a wait not decided yet)."""

    @property
    def took_s(self) -> float:
        return self.end_s - self.start_s


@dataclass(frozen=True)
class Waterfall:
    rows: list[Row]
    span_s: float
    """Seconds from the run's start to its end (or now, while it goes on)."""

    def ticks(self, count: int = 4) -> list[float]:
        return [self.span_s * i / count for i in range(count + 1)]


def _s(moment: datetime, origin: datetime) -> float:
    return max(0.0, (moment - origin).total_seconds())


def _model_row(call: ModelCallView, origin: datetime) -> Row:
    end = _s(call.created_at, origin)
    if call.started_at is not None:
        start = _s(call.started_at, origin)
    else:  # stored before calls kept their start: the reported latency, within the run
        start = max(0.0, end - call.latency_ms / 1000)
    return Row(
        label=f"model {call.model.partition(':')[2] or call.model}",
        anchor=f"model-{call.id}",
        start_s=start,
        end_s=end,
        segments=(Segment("model", start, end),),
    )


def _step_row(step: StepView, wait: ApprovalView | None, origin: datetime, now: datetime) -> Row:
    us = step.timings_us
    decided = _s(step.created_at, origin)
    before = sum(us.get(k, 0.0) for k in ("validate", "budget", "decide")) / 1e6
    if not before and step.decision is not None:
        before = step.decision.latency_us / 1e6
    start = max(0.0, decided - before)
    segments = [Segment("policy", start, decided)]
    end = decided
    still_open = False
    if wait is not None:
        waited_from = max(decided, _s(wait.request.created_at, origin))
        if wait.decided_at is not None:
            waited_to = _s(wait.decided_at, origin)
        else:
            waited_to, still_open = _s(now, origin), True
        segments.append(Segment("wait", waited_from, waited_to))
        end = max(end, waited_to)
    if step.finished_at is not None:
        finished = _s(step.finished_at, origin)
        if "execute" in us:
            tool_end = max(end, finished - us.get("record_outcome", 0.0) / 1e6)
            tool_start = max(end, tool_end - us["execute"] / 1e6)
            if tool_start > end:
                segments.append(Segment("other", end, tool_start))
            segments.append(Segment("tool", tool_start, tool_end))
        end = max(end, finished)
    return Row(
        label=f"#{step.idx} {step.tool}",
        anchor=f"step-{step.idx}",
        start_s=start,
        end_s=end,
        segments=tuple(segments),
        open=still_open,
    )


def waterfall(run: RunView, now: datetime) -> Waterfall:
    """The bars of a run loaded with its history, in the order they started."""
    origin = run.created_at
    waits = {a.request.step: a for a in run.approvals}
    rows = [_model_row(c, origin) for c in run.model_calls]
    rows += [_step_row(s, waits.get(s.idx), origin, now) for s in run.steps]
    rows.sort(key=lambda r: (r.start_s, r.end_s))
    ended = run.ended_at or max(now, run.created_at + timedelta(0))
    span = max([_s(ended, origin), *(r.end_s for r in rows), 0.001])
    return Waterfall(rows, span)
