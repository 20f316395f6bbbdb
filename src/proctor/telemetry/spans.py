"""A run's span tree, derived from its durable rows.

Spans are not recorded on the hot path: everything a span needs is already in
the journal (the run, its steps with their stage timings, its model calls and
approvals). :func:`run_spans` rebuilds the tree from those rows, so a crash
loses no span and the same run always gives the same tree, with the same ids.

The tree of one run::

    invoke_agent {agent}            the run, created_at .. ended_at
    ├── chat {model}                each model call (GenAI conventions)
    └── execute_tool {tool}         each governed call
        ├── proctor.decide {tool}   the policy decision
        ├── proctor.approval {tool} the wait for a person, and who decided how
        └── proctor.execute {tool}  the tool itself

Tool arguments and results are never attributes. Free text (reasons, error
messages, approvers' notes) goes through ``redact`` when one is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa

from proctor.errors import RunNotFound
from proctor.states import RunState, StepStatus
from proctor.store.tables import approvals, model_calls, runs, steps

AttributeValue = str | bool | int | float | Sequence[str]
Redact = Callable[[str, str], str]
"""``redact(tenant, text) -> text``: what every string attribute passes through."""

SpanKind = Literal["internal", "client"]

# Well-known provider names of the GenAI conventions, by proctor's model-spec prefix.
_PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}

_FAILED_STEPS = frozenset({StepStatus.FAILED, StepStatus.OUTCOME_UNKNOWN})


@dataclass(frozen=True)
class SpanRecord:
    """One span of a run: where it sits in the tree, when it ran, what it carries."""

    key: str
    """Stable within the run: ``run``, ``model/<id>``, ``step/<n>``, ``step/<n>/decide``…"""
    parent: str | None
    name: str
    kind: SpanKind
    start: datetime
    end: datetime | None
    """``None`` while the span is still open (a run that has not ended, a pending approval)."""
    trace_id: str
    """32 hex digits, the same for every span of the run (derived from the run id)."""
    span_id: str
    """16 hex digits, derived from the run id and ``key``."""
    parent_span_id: str | None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    error: str | None = None
    """``error.type`` when the operation failed; the span's status is then ERROR."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form, for the service's run detail."""
        return {
            "key": self.key,
            "parent": self.parent,
            "name": self.name,
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "attributes": {
                k: list(v) if isinstance(v, list | tuple) else v for k, v in self.attributes.items()
            },
            "error": self.error,
        }


def trace_id_of(run_id: str) -> str:
    """The run's trace id: 128 bits of SHA-256 of its id (never all zeros)."""
    value = hashlib.sha256(f"proctor-trace\x00{run_id}".encode()).hexdigest()[:32]
    return value if int(value, 16) else "1".zfill(32)


def span_id_of(run_id: str, key: str) -> str:
    value = hashlib.sha256(f"proctor-span\x00{run_id}\x00{key}".encode()).hexdigest()[:16]
    return value if int(value, 16) else "1".zfill(16)


def _us(value: float) -> timedelta:
    return timedelta(microseconds=value)


def _provider_and_model(spec: str) -> tuple[str, str]:
    provider, colon, model = spec.partition(":")
    if not colon:
        return "unknown", spec
    return _PROVIDERS.get(provider, provider), model


class _Builder:
    def __init__(self, run_id: str, tenant: str, redact: Redact | None) -> None:
        self.run_id = run_id
        self.trace_id = trace_id_of(run_id)
        self.tenant = tenant
        self._redact = redact
        self.spans: list[SpanRecord] = []
        self._by_key: dict[str, SpanRecord] = {}
        self._redacted: dict[str, str] = {}

    def text(self, value: str) -> str:
        if self._redact is None:
            return value
        # Run id, tenant, workflow and tool names recur on every span: redact each once.
        done = self._redacted.get(value)
        if done is None:
            done = self._redacted[value] = self._redact(self.tenant, value)
        return done

    def add(
        self,
        key: str,
        parent: str | None,
        name: str,
        kind: SpanKind,
        start: datetime,
        end: datetime | None,
        attributes: Mapping[str, AttributeValue | None],
        error: str | None = None,
    ) -> None:
        attrs: dict[str, AttributeValue] = {}
        for k, v in attributes.items():
            if v is None:
                continue
            if isinstance(v, str):
                attrs[k] = self.text(v)
            elif isinstance(v, list | tuple):
                attrs[k] = [self.text(str(x)) for x in v]
            else:
                attrs[k] = v
        # Durations are monotonic, timestamps wall-clock (and a test's clock may stand
        # still): keep every span inside its parent and never negative.
        up = self._by_key.get(parent) if parent else None
        if up is not None:
            start = max(start, up.start)
            if up.end is not None:
                start = min(start, up.end)
                end = up.end if end is None else min(end, up.end)
        if end is not None and end < start:
            end = start
        record = SpanRecord(
            key=key,
            parent=parent,
            name=self.text(name),
            kind=kind,
            start=start,
            end=end,
            trace_id=self.trace_id,
            span_id=span_id_of(self.run_id, key),
            parent_span_id=span_id_of(self.run_id, parent) if parent else None,
            attributes=attrs,
            error=error,
        )
        self.spans.append(record)
        self._by_key[key] = record


def run_spans(
    conn: sa.Connection, run_id: str, *, redact: Redact | None = None
) -> list[SpanRecord]:
    """The span tree of one run, parents before children, from its stored rows.

    A run that has not ended has an open run span (``end`` is ``None``), as
    has an approval still pending. Raises ``RunNotFound`` for an unknown run.
    """
    run = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
    if run is None:
        raise RunNotFound(f"no run {run_id}; `proctor runs list` shows the runs")
    b = _Builder(run_id, run.tenant, redact)
    ended: datetime | None = run.ended_at
    usage = run.usage or {}
    common: dict[str, AttributeValue | None] = {
        "proctor.run.id": run.id,
        "proctor.tenant": run.tenant,
        "proctor.workflow": run.workflow,
    }
    b.add(
        "run",
        None,
        f"invoke_agent {run.agent}",
        "internal",
        run.created_at,
        ended,
        {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": run.agent,
            **common,
            "proctor.run.state": run.state,
            "proctor.run.reason": run.reason,
            "proctor.run.reason_detail": run.reason_detail,
            "proctor.run.mode": run.mode,
            "proctor.run.role": run.role,
            "proctor.run.requester": run.requester,
            "proctor.bundle.version": run.bundle_version,
            "proctor.cost.usd": float(usage.get("usd", 0) or 0),
            "proctor.usage.model_tokens": int(usage.get("model_tokens", 0) or 0),
            "proctor.usage.tool_calls": int(usage.get("tool_calls", 0) or 0),
            "proctor.run.paused_s": float(run.paused_s),
        },
        error=run.reason if run.state == RunState.FAILED_SAFE.value else None,
    )

    calls = conn.execute(
        sa.select(model_calls)
        .where(model_calls.c.run_id == run_id)
        .order_by(model_calls.c.created_at, model_calls.c.id)
    )
    for mc in calls:
        provider, requested = _provider_and_model(mc.model)
        b.add(
            f"model/{mc.id}",
            "run",
            f"chat {requested}",
            "client",
            mc.created_at - timedelta(milliseconds=mc.latency_ms),
            mc.created_at,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": provider,
                "gen_ai.request.model": requested,
                "gen_ai.response.model": mc.answered_by,
                "gen_ai.response.finish_reasons": [mc.stop_reason],
                # The conventions count cached input inside input, reasoning inside output;
                # proctor keeps the four counts disjoint.
                "gen_ai.usage.input_tokens": mc.input_tokens + mc.cached_input_tokens,
                "gen_ai.usage.output_tokens": mc.output_tokens + mc.reasoning_tokens,
                "gen_ai.usage.cache_read.input_tokens": mc.cached_input_tokens,
                "gen_ai.usage.reasoning.output_tokens": mc.reasoning_tokens,
                **common,
                "proctor.model": mc.model,
                "proctor.model.tool_calls": mc.tool_calls,
                "proctor.cost.usd": mc.nano_usd / 1e9,
            },
        )

    waits = {
        a.step: a for a in conn.execute(sa.select(approvals).where(approvals.c.run_id == run_id))
    }
    for s in conn.execute(sa.select(steps).where(steps.c.run_id == run_id).order_by(steps.c.idx)):
        _step_spans(b, s, waits.get(s.idx), common, ended)
    return b.spans


def _step_spans(
    b: _Builder,
    s: Any,
    wait: Any,
    common: Mapping[str, AttributeValue | None],
    ended: datetime | None,
) -> None:
    timings: dict[str, float] = s.timings_us or {}
    decision: dict[str, Any] = s.decision or {}
    status = StepStatus(s.status)
    created: datetime = s.created_at
    decide_us = timings.get("decide", float(decision.get("latency_us", 0.0)))
    start = created - _us(timings.get("budget", 0.0) + decide_us)
    if s.finished_at is not None:
        end: datetime | None = s.finished_at
    elif wait is not None and wait.decided_at is not None:
        end = wait.decided_at
    elif status in (StepStatus.EXECUTING, StepStatus.AWAITING_APPROVAL):
        end = ended  # still open while the run is
    else:
        end = created  # denied: nothing ran after the decision
    key = f"step/{s.idx}"
    step_attrs: dict[str, AttributeValue | None] = {**common, "proctor.step": s.idx}
    error = (s.error or {}).get("kind") if status in _FAILED_STEPS else None
    b.add(
        key,
        "run",
        f"execute_tool {s.tool}",
        "internal",
        start,
        end,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": s.tool,
            "gen_ai.tool.type": "function",
            **step_attrs,
            "proctor.tool": s.tool,
            "proctor.step.status": s.status,
            "proctor.step.attempts": s.attempts,
            "proctor.decision.effect": decision.get("effect"),
            "proctor.error.message": (s.error or {}).get("message") if error else None,
        },
        error=error or ("outcome_unknown" if status is StepStatus.OUTCOME_UNKNOWN else None),
    )
    b.add(
        f"{key}/decide",
        key,
        f"proctor.decide {s.tool}",
        "internal",
        created - _us(decide_us),
        created,
        {
            **step_attrs,
            "proctor.tool": s.tool,
            "proctor.decision.effect": decision.get("effect"),
            "proctor.decision.reason": decision.get("reason") or None,
            "proctor.policy.ids": list(decision.get("policy_ids", ())),
            "proctor.approval.roles": list(decision.get("approval_roles", ())) or None,
            "proctor.bundle.version": decision.get("bundle_version"),
            "proctor.decision.errors": list(decision.get("errors", ())) or None,
        },
    )
    if wait is not None:
        b.add(
            f"{key}/approval",
            key,
            f"proctor.approval {s.tool}",
            "internal",
            wait.created_at,
            wait.decided_at or ended,
            {
                **step_attrs,
                "proctor.tool": s.tool,
                "proctor.approval.id": wait.id,
                "proctor.approval.status": wait.status,
                "proctor.approval.roles": list(wait.roles),
                "proctor.approval.policy_ids": list(wait.policy_ids),
                "proctor.approval.decided_by": wait.decided_by,
                "proctor.approval.decider_role": wait.decider_role,
                "proctor.approval.reason": wait.decision_reason,
                "proctor.approval.expires_at": wait.expires_at.isoformat(),
            },
        )
    if "execute" in timings and s.finished_at is not None:
        done = s.finished_at - _us(timings.get("record_outcome", 0.0))
        b.add(
            f"{key}/execute",
            key,
            f"proctor.execute {s.tool}",
            "internal",
            done - _us(timings["execute"]),
            done,
            {
                **step_attrs,
                "proctor.tool": s.tool,
                "proctor.step.status": s.status,
                "proctor.step.attempts": s.attempts,
                "proctor.idempotency_key": s.idempotency_key,
            },
            error=error,
        )
