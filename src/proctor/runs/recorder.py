"""The recorder: the only writer of step rows, run state and a run's audit entries.

Each method is one transaction that writes the journal row and the audit entry from the
same typed event, with the tenant's redaction applied once, here. Every move of a run's
state or a step's status is checked against ``proctor.states`` and written on condition
of the state it moves from, so a stale writer fails instead of overwriting a newer one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from proctor.approvals import ApprovalRequest, Approver, open_request
from proctor.audit.events import (
    ActionInvalid,
    ActionOutcome,
    ActionReconciled,
    ApprovalDecided,
    AuditEvent,
    RunModeChanged,
    RunOpened,
    RunPlanned,
    RunReclaimed,
    RunRouted,
    RunStateChanged,
)
from proctor.errors import InvalidAction, LeaseLost, RunStateError
from proctor.jsonvalue import digest
from proctor.redaction import redact_fields
from proctor.runs import journal
from proctor.runs.model import RunRecord, RunSpec, StepRecord, Usage
from proctor.runs.steps import NewStep, Outcome, approved_intent
from proctor.services import Services
from proctor.states import (
    ApprovalStatus,
    Mode,
    Reason,
    RunState,
    StepStatus,
    check_run_move,
    check_step_move,
)
from proctor.tools import Tool

Within = Callable[[sa.Connection], None]  # more work for the same transaction


class Recorder:
    """Writes what happens to runs. Stateless apart from the services it writes with."""

    def __init__(self, services: Services) -> None:
        self._s = services

    # -- runs ----------------------------------------------------------------------------

    async def open_run(
        self, run_id: str, spec: RunSpec, lease_until: datetime, release: str | None = None
    ) -> RunRecord:
        s, now = self._s, self._s.clock.now()
        version = s.version
        event = RunOpened(
            spec.agent,
            spec.role,
            spec.requester,
            spec.workflow,
            spec.mode.value,
            spec.budget.model_dump(mode="json"),
        )

        def work(conn: sa.Connection) -> None:
            worker = s.lease.worker_id
            journal.insert_run(conn, run_id, spec, version, now, worker, lease_until, release)
            self._append(conn, spec.tenant, run_id, None, event, version, redact=True)

        await s.store.transact(work, order=spec.tenant)
        return RunRecord(
            id=run_id,
            spec=spec,
            state=RunState.RUNNING,
            reason=None,
            bundle_version=version,
            created_at=now,
            paused_s=0.0,
            invalid_actions=0,
            usage=Usage(),
            release=release,
            lease_generation=1,
            lease_until=lease_until,
        )

    async def invalid(self, run: RunRecord, exc: InvalidAction) -> None:
        count = run.invalid_actions + 1
        event = ActionInvalid(exc.tool, exc.field, str(exc), count)

        def work(conn: sa.Connection) -> None:
            self._hold(conn, run)
            self._append(conn, run.spec.tenant, run.id, None, event, redact=True)
            journal.update_run(conn, run.id, invalid_actions=count)

        await self._s.store.transact(work, order=run.spec.tenant)
        run.invalid_actions = count

    def mode_changed(self, run: RunRecord, mode: Mode, reason: str) -> None:
        reason = self._s.redaction.text(run.spec.tenant, reason)
        with self._s.store.write() as conn:
            self._hold(conn, run)
            journal.update_run(conn, run.id, mode=mode.value)
            event = RunModeChanged(run.spec.mode.value, mode.value, reason)
            self._append(conn, run.spec.tenant, run.id, None, event)
        run.spec = run.spec.model_copy(update={"mode": mode})

    def routed(self, run: RunRecord, intent: str, tier: str, model: str, reason: str) -> None:
        self._noted(run, RunRouted(intent, tier, model, reason))

    def planned(self, run: RunRecord, calls: list[dict[str, Any]], source: str) -> None:
        self._noted(run, RunPlanned(calls, source))

    def _noted(self, run: RunRecord, event: AuditEvent) -> None:
        """An entry in the run's log that changes nothing else, redacted."""
        with self._s.store.write() as conn:
            self._hold(conn, run)
            self._append(conn, run.spec.tenant, run.id, None, event, redact=True)

    def usage(self, run: RunRecord, within: Within | None = None) -> None:
        """The run's usage as it is now (model tokens and money), with ``within``."""
        with self._s.store.write(durable=False) as conn:
            self._hold(conn, run)
            journal.update_run(conn, run.id, usage=run.usage.to_json())
            if within is not None:
                within(conn)

    def conversation(self, run: RunRecord, conversation: Any) -> None:
        """The agent's conversation, sealed (it holds tool results whole); for a run just
        paused for approval, only if nobody has taken the run over since."""
        sealed = {"sealed": self._s.sealer.seal(conversation)}
        with self._s.store.write(durable=False) as conn:
            if run.lease_generation is None and run.state is RunState.AWAITING_APPROVAL:
                if not journal.keep_paused_conversation(conn, run.id, sealed):
                    raise LeaseLost(f"run {run.id} was taken over while it waited for approval")
                return
            self._hold(conn, run)
            journal.update_run(conn, run.id, conversation=sealed)

    def request(self, run: RunRecord, text: str) -> None:
        """What the run was asked, redacted: the pages and traces show it."""
        with self._s.store.write(durable=False) as conn:
            self._hold(conn, run)
            journal.update_run(conn, run.id, request=self._s.redaction.text(run.spec.tenant, text))

    async def end(
        self,
        run: RunRecord,
        state: RunState,
        reason: Reason,
        detail: str | None,
        answer: str | None = None,
    ) -> None:
        """A terminal state and the final answer (redacted), durably; then telemetry."""

        def work(conn: sa.Connection) -> None:
            self._hold(conn, run)
            if answer is not None:
                journal.update_run(
                    conn, run.id, answer=self._s.redaction.text(run.spec.tenant, answer)
                )
            self._move(conn, run, state, reason, detail)

        await self._s.store.transact(work, order=run.spec.tenant)
        self._s.run_ended(run.id)

    # -- steps ---------------------------------------------------------------------------

    async def denied(self, run: RunRecord, step: NewStep) -> StepRecord:
        record = step.record(StepStatus.DENIED)
        row, event = step.row(record, self._s.clock.now()), step.denial()

        def work(conn: sa.Connection) -> None:
            self._hold(conn, run)
            journal.insert_step(conn, row)
            self._append(conn, run.spec.tenant, run.id, step.idx, event)

        await self._s.store.transact(work, order=run.spec.tenant)
        run.steps.append(record)
        return record

    async def approval_requested(
        self, run: RunRecord, step: NewStep, approval_id: str, expires_at: datetime
    ) -> StepRecord:
        """The step waits for a person: its row, the request, the entry and the pause."""
        record = step.record(StepStatus.AWAITING_APPROVAL, approval_id)
        spec, now = run.spec, self._s.clock.now()
        request = step.pending_request(run, approval_id, now, expires_at)
        row, event = step.row(record, now), step.approval_request(approval_id, expires_at)

        def work(conn: sa.Connection) -> None:
            self._hold(conn, run)
            journal.insert_step(conn, row)
            open_request(conn, request)
            self._append(conn, spec.tenant, run.id, step.idx, event)
            self._move(conn, run, RunState.AWAITING_APPROVAL, None, f"step {step.idx}")

        await self._s.store.transact(work, order=run.spec.tenant)
        run.steps.append(record)
        return record

    async def intent(self, run: RunRecord, step: NewStep) -> StepRecord:
        """Durably, before the side effect: the step is executing and the log says why."""
        record = step.record(StepStatus.EXECUTING)
        row, event = step.row(record, self._s.clock.now()), step.intent()

        def work(conn: sa.Connection) -> None:
            self._hold(conn, run)
            journal.insert_step(conn, row)
            self._append(conn, run.spec.tenant, run.id, step.idx, event)

        await self._s.store.transact(work, durable=True, order=run.spec.tenant)
        run.steps.append(record)
        return record

    async def approved_intent(self, run: RunRecord, record: StepRecord, tool: Tool) -> None:
        """An approved step starts executing, if it still waits (checked in this commit)."""
        event = approved_intent(record, tool)

        def work(conn: sa.Connection) -> None:
            self._hold(conn, run)
            self._move_step(conn, run, record, StepStatus.EXECUTING)
            self._append(conn, run.spec.tenant, run.id, record.idx, event)

        await self._s.store.transact(work, durable=True, order=run.spec.tenant)

    async def reconciled(
        self, run: RunRecord, record: StepRecord, happened: bool | None, detail: str
    ) -> None:
        event = ActionReconciled(record.tool, happened, detail)

        def work(conn: sa.Connection) -> None:
            self._hold(conn, run)
            self._append(conn, run.spec.tenant, run.id, record.idx, event, redact=True)

        await self._s.store.transact(work, order=run.spec.tenant)

    async def outcome(
        self,
        run: RunRecord,
        record: StepRecord,
        tool: Tool,
        outcome: Outcome,
        timings: dict[str, float],
        *,
        unknown: str,
    ) -> Any:
        """Record what the call did; an unknown outcome hands the run off in the same commit.
        Returns the result as the caller sees it (the tool's sensitive fields masked)."""
        s, tenant, clock = self._s, run.spec.tenant, self._s.clock
        began = clock.monotonic()
        status, is_unknown = outcome.status, outcome.status is StepStatus.OUTCOME_UNKNOWN
        redactor = s.redaction.redactor(tenant, tool.sensitive)
        visible = redact_fields(outcome.result, tool.sensitive)
        stored = redactor.value(outcome.result)
        sealed = None if stored == visible else s.sealer.seal(visible)
        error = None if outcome.error is None else redactor.value(outcome.error)
        event = ActionOutcome(
            tool.name,
            status.value,
            digest(stored) if status is StepStatus.SUCCEEDED else None,
            error,
            outcome.attempts,
            timings.get("execute", 0.0),
        )
        check_step_move(record.status, status)
        finished: dict[str, Any] = {"rid": run.id, "sidx": record.idx, "status": status.value}
        finished.update(result=stored, error=error, attempts=outcome.attempts)
        finished.update(timings_us=timings, finished_at=clock.now(), sealed_result=sealed)

        def work(conn: sa.Connection) -> None:
            self._hold(conn, run)
            self._append(conn, tenant, run.id, record.idx, event)
            timings["record_outcome"] = (clock.monotonic() - began) * 1e6
            journal.finish_step(conn, finished)
            if is_unknown:
                self._move(conn, run, RunState.HANDED_OFF, Reason.OUTCOME_UNKNOWN, unknown)

        # Not fsynced on its own: the next durable commit carries it to disk (a power loss
        # before then leaves the step "executing", which resume reconciles).
        await s.store.transact(work, durable=is_unknown, order=tenant)
        if is_unknown:
            s.run_ended(run.id)
        record.status, record.result, record.error = status, stored, error
        record.sealed_result = sealed
        return visible

    # -- the lease ---------------------------------------------------------------------

    async def keep(self, run: RunRecord) -> None:
        """Renew this worker's lease now (a heartbeat while a long call runs)."""
        run.lease_until = None  # due for renewal
        await self._s.store.transact(
            lambda conn: self._hold(conn, run), durable=False, order=run.spec.tenant
        )

    def release(self, run: RunRecord) -> None:
        """Let another worker take the run at once, instead of after this lease."""
        if run.lease_generation is None:
            return
        with self._s.store.write() as conn:
            journal.release(conn, run.id, self._s.lease.worker_id, run.lease_generation)
        run.lease_generation = run.lease_until = None

    def reclaim_expired(self) -> list[str]:
        """Runs whose worker's lease lapsed (it died, or hangs): each is released for
        another worker and its old worker fenced off for good. Returns their ids."""
        s, now = self._s, self._s.clock.now()
        with s.store.read() as conn:
            lapsed = journal.expired_leases(conn, now)
        reclaimed = []
        for run_id, tenant, owner, until, generation in lapsed:
            event = RunReclaimed(owner, until.isoformat(), generation)
            with s.store.write() as conn:
                if not journal.reclaim(conn, run_id, generation, now):
                    continue  # renewed or taken over meanwhile
                version = journal.bundle_version_of(conn, run_id)
                self._append(conn, tenant, run_id, None, event, version)
            reclaimed.append(run_id)
        return reclaimed

    # -- approvals, decided elsewhere ----------------------------------------------------

    def approval_decided(
        self,
        conn: sa.Connection,
        request: ApprovalRequest,
        approver: Approver,
        verdict: ApprovalStatus,
        reason: str,
    ) -> None:
        """A person decided: a denied step closes, and the run runs again."""
        now = self._s.clock.now()
        if verdict is ApprovalStatus.DENIED:
            self._close_step(conn, request, StepStatus.APPROVAL_DENIED)
        waited = (now - request.created_at).total_seconds()
        moved = journal.move_run(
            conn,
            request.run_id,
            RunState.AWAITING_APPROVAL,
            {"state": RunState.RUNNING.value, "updated_at": now},
            paused_s=waited,
        )
        if not moved:
            raise RunStateError(f"run {request.run_id} is no longer awaiting approval")
        version = journal.bundle_version_of(conn, request.run_id)
        for event in (
            ApprovalDecided(request.id, verdict.value, approver.name, approver.role, reason),
            RunStateChanged(
                RunState.AWAITING_APPROVAL.value,
                RunState.RUNNING.value,
                None,
                f"approval {request.id} {verdict.value} by {approver.name}",
            ),
        ):
            self._append(conn, request.tenant, request.run_id, request.step, event, version)

    def approval_expired(self, conn: sa.Connection, request: ApprovalRequest) -> bool:
        """The request went unanswered: its step closes and, if the run still waits on
        it, the run is handed off. True when that ended the run."""
        now = self._s.clock.now()
        self._close_step(conn, request, StepStatus.APPROVAL_EXPIRED)
        detail = f"approval {request.id} for {request.tool} expired unanswered"
        moved = journal.move_run(
            conn,
            request.run_id,
            RunState.AWAITING_APPROVAL,  # never revive or re-end a run
            {
                "state": RunState.HANDED_OFF.value,
                "reason": Reason.APPROVAL_EXPIRED.value,
                "reason_detail": detail,
                "updated_at": now,
                "ended_at": now,
                "owner": None,
                "lease_until": None,
            },
        )
        if not moved:
            return False
        journal.drop_seals(conn, request.run_id)
        event = RunStateChanged(
            RunState.AWAITING_APPROVAL.value,
            RunState.HANDED_OFF.value,
            Reason.APPROVAL_EXPIRED.value,
            detail,
        )
        version = journal.bundle_version_of(conn, request.run_id)
        self._append(conn, request.tenant, request.run_id, request.step, event, version)
        self._s.audit.checkpoint(conn, request.tenant)
        return True

    # -- internals -----------------------------------------------------------------------

    def _hold(self, conn: sa.Connection, run: RunRecord) -> None:
        """Fence this write: it commits only while this worker holds the run under its
        lease generation (taking the run over first if it let it go, as a paused run
        does). A worker whose run was taken over raises ``LeaseLost``, now and for every
        later write."""
        s = self._s
        now, seconds, worker = s.clock.now(), s.lease.seconds, s.lease.worker_id
        if run.lease_lost:
            raise LeaseLost(
                f"run {run.id} was taken over by another worker; this one writes nothing more to it"
            )
        due = run.lease_until is None or (run.lease_until - now).total_seconds() < seconds / 2
        until = now + timedelta(seconds=seconds) if due else run.lease_until
        assert until is not None
        if run.lease_generation is None:
            run.lease_generation = journal.take(conn, run.id, worker, now, until)
        elif not journal.hold(conn, run.id, worker, run.lease_generation, until):
            run.lease_lost = True
            raise LeaseLost(
                f"run {run.id} was taken over by another worker (this one held lease "
                f"generation {run.lease_generation}); this worker writes nothing more to it"
            )
        run.lease_until = until

    def _move_step(
        self, conn: sa.Connection, run: RunRecord, record: StepRecord, status: StepStatus
    ) -> None:
        check_step_move(record.status, status)
        if not journal.move_step(conn, run.id, record.idx, record.status, status):
            raise RunStateError(
                f"run {run.id} step {record.idx} is no longer {record.status}: another "
                "worker moved it on; nothing was run"
            )
        record.status = status

    @staticmethod
    def _close_step(conn: sa.Connection, request: ApprovalRequest, status: StepStatus) -> None:
        check_step_move(StepStatus.AWAITING_APPROVAL, status)
        journal.close_step(conn, request.run_id, request.step, status)

    def _move(
        self,
        conn: sa.Connection,
        run: RunRecord,
        state: RunState,
        reason: Reason | None,
        detail: str | None,
    ) -> None:
        """Move the run to ``state``, from the state this worker last knew it in."""
        previous, now = run.state, self._s.clock.now()
        check_run_move(previous, state)
        if detail is not None:
            detail = self._s.redaction.text(run.spec.tenant, detail)
        values: dict[str, Any] = {
            "state": state.value,
            "reason": reason.value if reason else None,
            "reason_detail": detail,
            "updated_at": now,
            "usage": run.usage.to_json(),
        }
        if state is not RunState.RUNNING:
            values.update(owner=None, lease_until=None)
            run.lease_generation = run.lease_until = None
        if state.terminal:
            values["ended_at"] = now
            journal.drop_seals(conn, run.id)
        if not journal.move_run(conn, run.id, previous, values):
            stored = journal.state_of(conn, run.id)
            raise RunStateError(
                f"run {run.id} is {stored}, not {previous} as this worker knew it; "
                f"it was not moved to {state}"
            )
        event = RunStateChanged(previous.value, state.value, values["reason"], detail)
        self._append(conn, run.spec.tenant, run.id, None, event)
        if state.terminal:
            self._s.audit.checkpoint(conn, run.spec.tenant)
        run.state, run.reason = state, reason

    def _append(
        self,
        conn: sa.Connection,
        tenant: str,
        run_id: str,
        step: int | None,
        event: AuditEvent,
        bundle_version: str | None = None,
        *,
        redact: bool = False,
    ) -> None:
        """An entry of the run; ``redact`` for events built from text not yet redacted."""
        self._s.audit.append(
            conn,
            tenant,
            event,
            run_id=run_id,
            step=step,
            bundle_version=bundle_version or self._s.version,
            redact=(lambda p: self._s.redaction.value(tenant, p)) if redact else None,
        )
