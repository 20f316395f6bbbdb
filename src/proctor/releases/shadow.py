"""Shadow runs: a candidate release follows live runs with its side effects suppressed.

A sampled live run gets a shadow run, opened under the candidate's bundle in a store
of its own (``<home>/shadow.db`` unless ``PROCTOR_SHADOW_DB_URL`` names another). Each
call the live run makes is proposed to the shadow run as well:

- a tool declared side-effect free (``Effect.READ``) runs against the live tool;
- any other tool never runs: the candidate's policy decides it, and a call it allows
  is recorded as "would execute" with its arguments;
- a call the candidate would hold for approval is refused at once in the shadow run:
  it never reaches a person;
- the shadow run's caps come from the candidate's bundle and its spend goes to the
  shadow store's own ledger, never the tenant's; its runs never appear among live runs.

When the live run ends, or first waits for a person, the two are compared and the
comparison is kept beside the live run in the live store (``shadow_runs``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from proctor.approvals import ApprovalQueue
from proctor.audit import AuditLog, SigningKey
from proctor.budgets import DailyLedger
from proctor.clock import Clock
from proctor.errors import ProctorError
from proctor.ids import new_id
from proctor.jsonvalue import to_plain
from proctor.policy import PolicyBundle
from proctor.policy.versions import record_bundle_version
from proctor.redaction.policy import Redaction
from proctor.releases.registry import Release
from proctor.runs.live import LiveRun
from proctor.runs.model import CallOutcome, CallStatus, RunSpec
from proctor.runs.recorder import Recorder
from proctor.runs.run import Run
from proctor.sealing import Sealer, secret_of
from proctor.services import Lease, Services
from proctor.states import Reason, RunState
from proctor.store import Store
from proctor.store.tables import shadow_runs
from proctor.tools import Effect, ToolRegistry

log = logging.getLogger("proctor")

SUPPRESSED = {"shadow": "not executed"}
"""What a suppressed call returns to the shadow run."""


def suppressed(tools: ToolRegistry) -> ToolRegistry:
    """The tools as a shadow run sees them: reads as they are, every other tool's function
    replaced by one that runs nothing."""

    async def nothing(*args: Any, **kwargs: Any) -> dict[str, str]:
        return dict(SUPPRESSED)

    return ToolRegistry(
        [t if t.effect is Effect.READ else replace(t, fn=nothing, reconcile_fn=None) for t in tools]
    )


class ShadowKernel:
    """The parts a shadow run is governed with: the candidate's bundle, suppressed tools,
    and the shadow store with its own audit log and ledger."""

    def __init__(
        self,
        store: Store,
        key: SigningKey,
        clock: Clock,
        bundle: PolicyBundle,
        tools: ToolRegistry,
    ) -> None:
        record_bundle_version(store, bundle, clock.now())
        self.services = Services(
            store=store,
            audit=AuditLog(key, clock),
            redaction=Redaction(bundle.settings.redaction, secret_of(key.private)),
            sealer=Sealer.from_signing_key(key.private),
            clock=clock,
            bundle=bundle,
            tools=suppressed(tools),
            ledger=DailyLedger(store, clock),
            lease=Lease(worker_id=new_id("wrk"), seconds=300.0),
            retry_backoff_s=0.0,
        )
        self.recorder = Recorder(self.services)
        self.approvals = ApprovalQueue(self.services, self.recorder)

    async def open(self, spec: RunSpec) -> Run:
        budget = spec.budget.filled_from(self.services.policy.settings.budgets.run)
        spec = spec.model_copy(update={"budget": budget, "session": None})
        until = self.services.clock.now() + timedelta(seconds=self.services.lease.seconds)
        record = await self.recorder.open_run(new_id("shd"), spec, until)
        return Run(LiveRun(self.services, self.recorder, record), self.approvals)


class ShadowMirror:
    """Follows one live run with a shadow run; ``finish`` keeps the comparison."""

    def __init__(
        self, live_store: Store, candidate: Release, kernel: ShadowKernel, shadow: Run
    ) -> None:
        self._store, self._candidate, self._shadow = live_store, candidate, shadow
        self._clock = kernel.services.clock
        self._reads = frozenset(t.name for t in kernel.services.tools if t.effect is Effect.READ)
        self._calls: list[dict[str, Any]] = []
        self._live_s = 0.0
        self._shadow_s = 0.0
        self._started = time.monotonic()
        self._pending: dict[str, Any] | None = None
        """The candidate's side of the call the live run is making."""
        self.finished = False

    def told(self, trusted: str | None, plan: Any) -> None:
        """The shadow run learns what the live run learns from its caller."""
        if self.finished:
            return
        if trusted is not None:
            self._shadow.trust(trusted)
        if plan is not None:
            self._shadow.commit_plan(plan, source="shadow")

    async def propose(self, tool: str, args: Mapping[str, Any] | str | bytes) -> None:
        """The candidate decides (and reads) before the live call runs, on the same world."""
        self._pending = None
        if self.finished:
            return
        began = time.monotonic()
        try:
            if self._shadow.state is RunState.RUNNING:
                theirs = await self._call(tool, args)
                side = _side(theirs, suppressed=tool not in self._reads)
            else:
                side = {"decision": None, "status": "stopped"}
        except ProctorError as exc:  # the candidate's run refused or ended: it is compared
            side = {"decision": None, "status": "refused", "detail": str(exc)}
        self._shadow_s += time.monotonic() - began
        self._pending = side

    async def called(
        self, live: Run, tool: str, args: Mapping[str, Any] | str | bytes, outcome: CallOutcome
    ) -> None:
        side, self._pending = self._pending, None
        if self.finished or side is None or outcome.replayed:
            return
        self._live_s = time.monotonic() - self._started - self._shadow_s
        self._calls.append(
            {
                "step": outcome.step,
                "tool": tool,
                "args": live.steps[outcome.step].args if outcome.step < len(live.steps) else {},
                "live": _side(outcome),
                "candidate": side,
            }
        )
        if outcome.status is CallStatus.AWAITING_APPROVAL:
            await self.finish(live, "the live run waits for a person")

    async def _call(self, tool: str, args: Mapping[str, Any] | str | bytes) -> CallOutcome:
        run = self._shadow
        outcome = await (
            run.call(tool, args) if isinstance(args, Mapping) else run.call_json(tool, args)
        )
        if outcome.status is CallStatus.AWAITING_APPROVAL:
            # Nobody is ever asked in a shadow: the requester refuses at once, and the
            # comparison shows the call as one the candidate would hold for approval.
            await run.refuse("shadow run: a candidate's approval request reaches no one")
            return replace(outcome, status=CallStatus.AWAITING_APPROVAL)
        return outcome

    async def finish(self, live: Run, note: str | None = None) -> None:
        """End the shadow run as the live one ended and keep the comparison."""
        if self.finished:
            return
        self.finished = True
        shadow = self._shadow
        try:
            if not shadow.state.terminal:
                if live.state is RunState.COMPLETED:
                    await shadow.complete("the live run completed")
                else:
                    await shadow.hand_off(Reason.ESCALATED, note or f"live run {live.state.value}")
        except ProctorError as exc:
            log.warning("shadow run %s could not end: %s", shadow.id, exc)
        comparison = compare(self._calls)
        comparison.update(
            {
                "live": {
                    "state": live.state.value,
                    "usd": str(live.usage.usd),
                    "seconds": round(self._live_s, 6),
                },
                "candidate": {
                    "state": shadow.state.value,
                    "usd": str(shadow.usage.usd),
                    "seconds": round(self._shadow_s, 6),
                },
                "note": note,
            }
        )
        with self._store.write() as conn:
            conn.execute(
                shadow_runs.insert().values(
                    live_run=live.id,
                    candidate=self._candidate.id,
                    shadow_run=shadow.id,
                    comparison=to_plain(comparison),
                    created_at=self._clock.now(),
                )
            )


def _side(outcome: CallOutcome, *, suppressed: bool = False) -> dict[str, Any]:
    """How a call ended, for the comparison; ``suppressed``: the candidate's call of a tool
    that never runs in a shadow."""
    decision = None if outcome.decision is None else outcome.decision.effect.value
    status = outcome.status.value
    if suppressed and outcome.status is CallStatus.EXECUTED:
        status = "would_execute"
    elif suppressed and outcome.status is CallStatus.AWAITING_APPROVAL:
        status = "would_ask_approval"
    return {"decision": decision, "status": status}


_HAPPENS = frozenset({"executed", "would_execute"})


def compare(calls: list[dict[str, Any]]) -> dict[str, Any]:
    """The verdict on one live run and its shadow: ``different_decisions`` when a call
    was decided otherwise, else ``different_actions`` when a different set of calls would
    take effect, else ``same_actions``; with the incidents the candidate would cause."""
    decisions = [c for c in calls if c["live"]["decision"] != c["candidate"]["decision"]]
    acted = [
        c
        for c in calls
        if (c["live"]["status"] in _HAPPENS) != (c["candidate"]["status"] in _HAPPENS)
    ]
    incidents = [
        {"kind": "policy_breach", "detail": f"step {c['step']}: {c['tool']} would execute"}
        for c in calls
        if c["candidate"]["status"] in _HAPPENS
        and c["live"]["status"] not in _HAPPENS
        and c["live"]["decision"] in ("deny", "require_approval")
    ]
    verdict = (
        "different_decisions" if decisions else "different_actions" if acted else "same_actions"
    )
    return {"verdict": verdict, "calls": calls, "incidents": incidents}
