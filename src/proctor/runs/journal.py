"""Reading and writing runs and their steps. Statements are built once: this is the hot path."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from proctor.budgets import BudgetCaps, nano_usd
from proctor.errors import RunBusy, RunNotFound, RunTerminated
from proctor.ids import new_id
from proctor.models import ModelResponse
from proctor.policy import Decision
from proctor.runs.model import (
    RUN_SCHEMA_VERSION,
    Origin,
    RunRecord,
    RunSpec,
    StepRecord,
    Usage,
)
from proctor.runs.views.versions import StoredRun, current
from proctor.states import TERMINAL_STATES, Mode, Reason, RunState, StepStatus
from proctor.store.prepared import Prepared
from proctor.store.tables import dry_run_decisions, model_calls, runs, steps

_insert_step = Prepared(steps.insert(), steps)
_finish_step = Prepared(
    steps.update()
    .where(steps.c.run_id == sa.bindparam("rid"), steps.c.idx == sa.bindparam("sidx"))
    .values(
        status=sa.bindparam("status"),
        result=sa.bindparam("result"),
        error=sa.bindparam("error"),
        attempts=sa.bindparam("attempts"),
        timings_us=sa.bindparam("timings_us"),
        finished_at=sa.bindparam("finished_at"),
        sealed_result=sa.bindparam("sealed_result"),
        sealed_args=None,
    ),
    steps,
)
_move_step = (
    steps.update()
    .where(
        steps.c.run_id == sa.bindparam("rid"),
        steps.c.idx == sa.bindparam("sidx"),
        steps.c.status == sa.bindparam("previous"),
    )
    .values(status=sa.bindparam("status"))
)


def insert_run(
    conn: sa.Connection,
    run_id: str,
    spec: RunSpec,
    bundle_version: str,
    now: datetime,
    owner: str,
    lease_until: datetime,
    release: str | None = None,
) -> None:
    conn.execute(
        runs.insert(),
        {
            "id": run_id,
            "tenant": spec.tenant,
            "workflow": spec.workflow,
            "agent": spec.agent,
            "role": spec.role,
            "requester": spec.requester,
            "mode": spec.mode.value,
            "state": RunState.RUNNING.value,
            "reason": None,
            "reason_detail": None,
            "budget": spec.budget.model_dump(mode="json"),
            "usage": Usage().to_json(),
            "bundle_version": bundle_version,
            "invalid_actions": 0,
            "max_invalid_actions": spec.max_invalid_actions,
            "paused_s": 0.0,
            "owner": owner,
            "lease_until": lease_until,
            "lease_generation": 1,
            "created_at": now,
            "updated_at": now,
            "ended_at": None,
            "schema_version": RUN_SCHEMA_VERSION,
            "session": spec.session,
            "origin": spec.origin.value,
            "release": release,
        },
    )


def insert_beside(
    conn: sa.Connection,
    run_id: str,
    step: int,
    release: str,
    tool: str,
    live: Decision,
    beside: Decision,
    now: datetime,
) -> None:
    """A call decided again, log only, by ``release``'s bundle."""
    conn.execute(
        dry_run_decisions.insert().values(
            run_id=run_id,
            step=step,
            candidate=release,
            tool=tool,
            live=live.effect.value,
            dry_run=beside.effect.value,
            live_policies=list(live.policy_ids),
            dry_run_policies=list(beside.policy_ids),
            created_at=now,
        )
    )


def insert_step(conn: sa.Connection, values: dict[str, Any]) -> None:
    _insert_step.execute(conn, values)


def finish_step(conn: sa.Connection, values: dict[str, Any]) -> None:
    _finish_step.execute(conn, values)


def move_step(
    conn: sa.Connection, run_id: str, idx: int, previous: StepStatus, status: StepStatus
) -> bool:
    """Set a step's status if it is still ``previous``; False if another writer moved it."""
    params = {"rid": run_id, "sidx": idx, "previous": previous.value, "status": status.value}
    return bool(conn.execute(_move_step, params).rowcount == 1)


def close_step(conn: sa.Connection, run_id: str, idx: int, status: StepStatus) -> None:
    """A step that will never run: its status, and its sealed arguments dropped."""
    conn.execute(
        steps.update()
        .where(steps.c.run_id == run_id, steps.c.idx == idx)
        .values(status=status.value, sealed_args=None)
    )


def drop_seals(conn: sa.Connection, run_id: str) -> None:
    """A run that ended needs no whole arguments or results again: drop their seals."""
    conn.execute(
        steps.update()
        .where(
            steps.c.run_id == run_id,
            sa.or_(steps.c.sealed_args.is_not(None), steps.c.sealed_result.is_not(None)),
        )
        .values(sealed_args=None, sealed_result=None)
    )


def update_run(conn: sa.Connection, run_id: str, **values: Any) -> None:
    """Values of a run that are not its state (usage, mode, counts)."""
    conn.execute(runs.update().where(runs.c.id == run_id).values(**values))


def keep_paused_conversation(conn: sa.Connection, run_id: str, sealed: Any) -> bool:
    """The conversation of a run paused for approval, if still nobody holds the run."""
    kept = conn.execute(
        runs.update()
        .where(
            runs.c.id == run_id,
            runs.c.state == RunState.AWAITING_APPROVAL.value,
            runs.c.owner.is_(None),
        )
        .values(conversation=sealed)
    )
    return bool(kept.rowcount == 1)


def move_run(
    conn: sa.Connection,
    run_id: str,
    previous: RunState,
    values: dict[str, Any],
    *,
    paused_s: float = 0.0,
) -> bool:
    """Change a run's state (and ``values``) if it is still ``previous``; False otherwise."""
    if paused_s:
        values = {**values, "paused_s": runs.c.paused_s + paused_s}
    moved = conn.execute(
        runs.update().where(runs.c.id == run_id, runs.c.state == previous.value).values(**values)
    )
    return bool(moved.rowcount == 1)


def state_of(conn: sa.Connection, run_id: str) -> RunState:
    return RunState(conn.execute(sa.select(runs.c.state).where(runs.c.id == run_id)).scalar_one())


def bundle_version_of(conn: sa.Connection, run_id: str) -> str:
    """The version of the bundle the run was opened under."""
    query = sa.select(runs.c.bundle_version).where(runs.c.id == run_id)
    return str(conn.execute(query).scalar_one())


def take(conn: sa.Connection, run_id: str, owner: str, now: datetime, until: datetime) -> int:
    """Take the run over: one conditional write that succeeds only if the run has not
    ended and no other worker's lease is live. Returns the new lease generation, the
    fencing token every later write of this worker names. Raises ``RunTerminated``,
    ``RunBusy`` or ``RunNotFound`` otherwise."""
    taken = conn.execute(
        runs.update()
        .where(
            runs.c.id == run_id,
            runs.c.state.not_in([s.value for s in TERMINAL_STATES]),
            sa.or_(runs.c.owner.is_(None), runs.c.owner == owner, runs.c.lease_until < now),
        )
        .values(
            owner=owner,
            lease_until=until,
            lease_generation=runs.c.lease_generation + 1,
            updated_at=now,
        )
        .returning(runs.c.lease_generation)
    ).scalar_one_or_none()
    if taken is not None:
        return int(taken)
    row = conn.execute(
        sa.select(runs.c.state, runs.c.reason, runs.c.owner, runs.c.lease_until).where(
            runs.c.id == run_id
        )
    ).first()
    if row is None:
        raise RunNotFound(f"no run {run_id}; `proctor runs list` shows the runs")
    if RunState(row.state).terminal:
        raise RunTerminated(
            f"run {run_id} already ended {row.state} ({row.reason}); "
            "a terminal run never runs again"
        )
    raise RunBusy(
        f"run {run_id} is held by worker {row.owner} until {row.lease_until:%H:%M:%S} UTC; "
        "it can be taken over when that lease expires"
    )


_hold = Prepared(
    runs.update()
    .where(
        runs.c.id == sa.bindparam("rid"),
        runs.c.owner == sa.bindparam("worker"),
        runs.c.lease_generation == sa.bindparam("generation"),
    )
    .values(lease_until=sa.bindparam("lease_until")),
    runs,
)


def hold(conn: sa.Connection, run_id: str, owner: str, generation: int, until: datetime) -> bool:
    """Keep (and extend to ``until``) the lease of generation ``generation``: the fence of
    every write of a worker. False if the run was taken over since, or released."""
    params = {"rid": run_id, "worker": owner, "generation": generation, "lease_until": until}
    return _hold.execute(conn, params) == 1


def release(conn: sa.Connection, run_id: str, owner: str, generation: int) -> None:
    conn.execute(
        runs.update()
        .where(runs.c.id == run_id, runs.c.owner == owner, runs.c.lease_generation == generation)
        .values(owner=None, lease_until=None)
    )


def expired_leases(conn: sa.Connection, now: datetime) -> list[tuple[str, str, str, datetime, int]]:
    """Running runs whose worker's lease lapsed: ``(run id, tenant, owner, until, generation)``."""
    query = sa.select(
        runs.c.id, runs.c.tenant, runs.c.owner, runs.c.lease_until, runs.c.lease_generation
    ).where(
        runs.c.state == RunState.RUNNING.value,
        runs.c.owner.is_not(None),
        runs.c.lease_until < now,
    )
    return [
        (r.id, r.tenant, r.owner, r.lease_until, r.lease_generation) for r in conn.execute(query)
    ]


def live_run_of(conn: sa.Connection, tenant: str, session: str) -> str | None:
    """The run that has not ended serving ``session`` for ``tenant``, the latest if several."""
    query = (
        sa.select(runs.c.id)
        .where(
            runs.c.tenant == tenant,
            runs.c.session == session,
            runs.c.state.not_in([s.value for s in TERMINAL_STATES]),
        )
        .order_by(runs.c.created_at.desc(), runs.c.id.desc())
        .limit(1)
    )
    found: str | None = conn.execute(query).scalar_one_or_none()
    return found


def reclaim(conn: sa.Connection, run_id: str, generation: int, now: datetime) -> bool:
    """Release a lapsed lease of ``generation``, fencing off its worker for good."""
    moved = conn.execute(
        runs.update()
        .where(
            runs.c.id == run_id,
            runs.c.state == RunState.RUNNING.value,
            runs.c.lease_generation == generation,
            runs.c.lease_until < now,
        )
        .values(
            owner=None,
            lease_until=None,
            lease_generation=runs.c.lease_generation + 1,
            updated_at=now,
        )
    )
    return bool(moved.rowcount == 1)


def record_model_call(
    conn: sa.Connection,
    run_id: str,
    spec: RunSpec,
    model: str,
    response: ModelResponse,
    cost: Decimal,
    reserved_nano_usd: int,
    now: datetime,
    *,
    started: datetime | None = None,
    params: dict[str, Any] | None = None,
) -> None:
    """One model call with what it used and cost: the run's cost is the sum of these.
    ``started`` is when it was asked, on the clock that stamps ``now``."""
    u = response.usage
    conn.execute(
        model_calls.insert(),
        {
            "id": new_id("mc"),
            "run_id": run_id,
            "tenant": spec.tenant,
            "workflow": spec.workflow,
            "model": model,
            "answered_by": response.model,
            "input_tokens": u.input_tokens,
            "cached_input_tokens": u.cached_input_tokens,
            "output_tokens": u.output_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "nano_usd": nano_usd(cost, round_up=True),
            "reserved_nano_usd": reserved_nano_usd,
            "latency_ms": response.latency_ms,
            "tool_calls": len(response.tool_calls),
            "stop_reason": response.stop_reason[:64],
            "created_at": now,
            "started_at": started,
            "response_id": (response.id or "")[:256] or None,
            "server_address": (response.server_address or "")[:256] or None,
            "server_port": response.server_port,
            "params": params,
        },
    )


def load_run(conn: sa.Connection, run_id: str) -> RunRecord:
    """A run as the live handle needs it; its schema version checked (and an older one
    upgraded) as every read of a stored run is."""
    row = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
    if row is None:
        raise RunNotFound(f"no run {run_id}; `proctor runs list` shows the runs")
    step_rows = conn.execute(sa.select(steps).where(steps.c.run_id == run_id).order_by(steps.c.idx))
    stored = current(StoredRun(dict(row._mapping), [dict(s._mapping) for s in step_rows]))
    r = stored.run
    record = RunRecord(
        id=r["id"],
        spec=RunSpec(
            agent=r["agent"],
            role=r["role"],
            tenant=r["tenant"],
            workflow=r["workflow"],
            requester=r["requester"],
            mode=Mode(r["mode"]),
            budget=BudgetCaps(**r["budget"]),
            max_invalid_actions=r["max_invalid_actions"],
            session=r["session"],
            origin=Origin(r["origin"]),
        ),
        state=RunState(r["state"]),
        reason=None if r["reason"] is None else Reason(r["reason"]),
        bundle_version=r["bundle_version"],
        created_at=r["created_at"],
        paused_s=r["paused_s"],
        invalid_actions=r["invalid_actions"],
        usage=Usage.from_json(r["usage"]),
        release=r["release"],
    )
    for s in stored.steps:
        record.steps.append(
            StepRecord(
                idx=s["idx"],
                tool=s["tool"],
                args=s["args"],
                args_hash=s["args_hash"],
                status=StepStatus(s["status"]),
                decision=Decision.from_stored(s["decision"]),
                idempotency_key=s["idempotency_key"],
                approval_id=s["approval_id"],
                result=s["result"],
                error=s["error"],
                sealed_result=s["sealed_result"],
                call_id=s["call_id"],
            )
        )
    return record


def conversation_of(conn: sa.Connection, run_id: str) -> Any:
    """The agent conversation kept with a run, sealed; ``None`` if there is none."""
    return conn.execute(sa.select(runs.c.conversation).where(runs.c.id == run_id)).scalar_one()


def sealed_args_of(conn: sa.Connection, run_id: str, idx: int) -> str | None:
    query = sa.select(steps.c.sealed_args).where(steps.c.run_id == run_id, steps.c.idx == idx)
    sealed: str | None = conn.execute(query).scalar_one()
    return sealed


def claim_ready(
    conn: sa.Connection, owner: str, now: datetime, until: datetime, limit: int
) -> list[str]:
    """Take over up to ``limit`` agent runs that are ready for a worker: running, held by
    nobody (queued, approved, or released after their worker's lease lapsed), with the
    conversation a worker goes on from. On PostgreSQL the rows another worker is claiming
    are skipped, not waited for (``FOR UPDATE SKIP LOCKED``); SQLite has one writer."""
    query = (
        sa.select(runs.c.id)
        .where(
            runs.c.state == RunState.RUNNING.value,
            runs.c.owner.is_(None),
            runs.c.conversation.is_not(None),
        )
        .order_by(runs.c.updated_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed = []
    for (run_id,) in conn.execute(query).all():
        take(conn, run_id, owner, now, until)  # the row is this transaction's: it succeeds
        claimed.append(str(run_id))
    return claimed
