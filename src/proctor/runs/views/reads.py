"""Reading runs, with their steps, model calls and approvals, from the store.

Every read of the ``runs``, ``steps``, ``model_calls`` and ``approvals`` tables by
the service, the CLI, evals and evidence goes through here; each row is parsed by
its view's ``from_row``, after ``versions.current`` checked the run's schema version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from proctor.budgets import nano_usd
from proctor.errors import RunNotFound
from proctor.runs.views.values import ApprovalView, ModelCallView, RunCost, RunView, StepView
from proctor.runs.views.versions import StoredRun, current
from proctor.states import Reason, RunState
from proctor.store.tables import approvals, model_calls, runs, steps

_NOT_FOUND = "no run {}; `proctor runs list` shows the runs"

# The runs row as read: every column but the sealed conversation, and whether there is one.
_RUN_COLUMNS = (
    *(c for c in runs.c if c.name != "conversation"),
    runs.c.conversation.is_not(None).label("has_conversation"),
)
# Sealed arguments and results are never read.
_STEP_COLUMNS = tuple(c for c in steps.c if c.name not in ("sealed_args", "sealed_result"))
_COST_FIELDS = (
    "nano_usd",
    "calls",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "reasoning_tokens",
)


def utc(moment: datetime | None) -> datetime | None:
    """A query's time as UTC; a time without a zone is taken as UTC."""
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class RunFilter:
    """Which runs to read; every field left ``None`` keeps every run."""

    tenant: str | None = None
    workflow: str | None = None
    state: RunState | None = None
    reason: Reason | None = None
    since: datetime | None = None
    """Created at or after this."""
    until: datetime | None = None
    """Created before this."""
    alive_since: datetime | None = None
    """Not ended before this (still going, or ended at or after it)."""
    cost_above: Decimal | None = None
    """Model calls costing more than this, in USD."""
    text: str | None = None
    """In the run's id, or (any case) in its request."""
    release: str | None = None
    """Opened under this release."""


def _costs() -> sa.Subquery:
    """Each run's model calls summed: one grouped query for any number of runs."""
    c = model_calls.c
    return (
        sa.select(
            c.run_id,
            sa.func.sum(c.nano_usd).label("nano_usd"),
            sa.func.count().label("calls"),
            sa.func.sum(c.input_tokens).label("input_tokens"),
            sa.func.sum(c.cached_input_tokens).label("cached_input_tokens"),
            sa.func.sum(c.output_tokens).label("output_tokens"),
            sa.func.sum(c.reasoning_tokens).label("reasoning_tokens"),
        )
        .group_by(c.run_id)
        .subquery("run_costs")
    )


def _cost_of(m: Mapping[str, Any]) -> RunCost:
    return RunCost(**{name: int(m[f"cost_{name}"] or 0) for name in _COST_FIELDS})


def _conditions(where: RunFilter, nano: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
    found: list[sa.ColumnElement[bool]] = []
    if where.tenant is not None:
        found.append(runs.c.tenant == where.tenant)
    if where.workflow is not None:
        found.append(runs.c.workflow == where.workflow)
    if where.state is not None:
        found.append(runs.c.state == where.state.value)
    if where.reason is not None:
        found.append(runs.c.reason == where.reason.value)
    if where.since is not None:
        found.append(runs.c.created_at >= utc(where.since))
    if where.until is not None:
        found.append(runs.c.created_at < utc(where.until))
    if where.alive_since is not None:
        found.append(sa.or_(runs.c.ended_at.is_(None), runs.c.ended_at >= utc(where.alive_since)))
    if where.cost_above is not None:
        found.append(nano > nano_usd(where.cost_above, round_up=False))
    if where.text:
        pattern = "%" + _escape_like(where.text) + "%"
        found.append(
            sa.or_(
                runs.c.id.like(pattern, escape="\\"),
                sa.func.lower(runs.c.request).like(pattern.lower(), escape="\\"),
            )
        )
    if where.release is not None:
        found.append(runs.c.release == where.release)
    return found


def _escape_like(text: str) -> str:
    """``text`` matched as it is: ``%`` and ``_`` are not wildcards."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


RUN_ORDERS = ("newest", "oldest", "cost", "duration")
"""How ``list_runs`` may sort: by start (either way), by cost or by time taken (largest
first; runs still going sort last by time taken)."""


def _runs_query(where: RunFilter) -> sa.Select[Any]:
    costs = _costs()
    nano = sa.func.coalesce(costs.c.nano_usd, 0)
    return (
        sa.select(*_RUN_COLUMNS, *(costs.c[n].label(f"cost_{n}") for n in _COST_FIELDS))
        .select_from(runs.outerjoin(costs, costs.c.run_id == runs.c.id))
        .where(*_conditions(where, nano))
    )


def _stored(row: Any, step_rows: Sequence[Any] = (), call_rows: Sequence[Any] = ()) -> StoredRun:
    """A run's rows at this proctor's schema version (see ``versions``)."""
    return current(
        StoredRun(
            dict(row._mapping),
            [dict(s._mapping) for s in step_rows],
            [dict(c._mapping) for c in call_rows],
        )
    )


def list_runs(
    conn: sa.Connection,
    where: RunFilter = RunFilter(),
    *,
    limit: int | None = None,
    offset: int = 0,
    oldest_first: bool = False,
    order: str = "newest",
) -> list[RunView]:
    """Runs with their cost, newest first (or as ``order`` says, one of ``RUN_ORDERS``);
    their steps are not loaded."""
    if order not in RUN_ORDERS:
        raise ValueError(f"runs sort by {', '.join(RUN_ORDERS)}; not {order!r}")
    query = _runs_query(where)
    newest = (runs.c.created_at.desc(), runs.c.id)
    keys: tuple[sa.ColumnElement[Any] | sa.UnaryExpression[Any], ...]
    if oldest_first or order == "oldest":
        keys = (runs.c.created_at, runs.c.id)
    elif order == "cost":
        nano = query.selected_columns["cost_nano_usd"]
        keys = (sa.func.coalesce(nano, 0).desc(), *newest)
    elif order == "duration":
        took = sa.func.coalesce(_seconds(runs.c.ended_at) - _seconds(runs.c.created_at), -1)
        keys = (took.desc(), *newest)
    else:
        keys = newest
    query = query.order_by(*keys).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    found = []
    for row in conn.execute(query):
        stored = _stored(row)
        found.append(RunView.from_row(stored.run, _cost_of(stored.run)))
    return found


class _seconds(FunctionElement[float]):
    """A timestamp column as seconds since some fixed moment, on SQLite and PostgreSQL."""

    type = sa.Float()
    inherit_cache = True


@compiles(_seconds)
def _seconds_default(element: _seconds, compiler: Any, **kw: Any) -> str:
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(_seconds, "sqlite")
def _seconds_sqlite(element: _seconds, compiler: Any, **kw: Any) -> str:
    return f"(julianday({compiler.process(element.clauses, **kw)}) * 86400.0)"


def count_runs(conn: sa.Connection, where: RunFilter = RunFilter()) -> int:
    """How many runs ``list_runs`` would give without a limit."""
    query = _runs_query(where).subquery()
    return int(conn.execute(sa.select(sa.func.count()).select_from(query)).scalar_one())


def _run_row(conn: sa.Connection, run_id: str) -> Any:
    row = conn.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).first()
    if row is None:
        raise RunNotFound(_NOT_FOUND.format(run_id))
    return row


def _step_rows(conn: sa.Connection, run_id: str, before: int | None = None) -> list[Any]:
    query = sa.select(*_STEP_COLUMNS).where(steps.c.run_id == run_id).order_by(steps.c.idx)
    if before is not None:
        query = query.where(steps.c.idx < before)
    return list(conn.execute(query))


def load_run(conn: sa.Connection, run_id: str, *, history: bool = True) -> RunView:
    """One run with its steps, model calls and approvals; with ``history=False`` the run
    and its cost only. Raises ``RunNotFound`` for an unknown run."""
    if not history:
        row = conn.execute(_runs_query(RunFilter()).where(runs.c.id == run_id)).first()
        if row is None:
            raise RunNotFound(_NOT_FOUND.format(run_id))
        stored = _stored(row)
        return RunView.from_row(stored.run, _cost_of(stored.run))
    call_rows = conn.execute(
        sa.select(model_calls)
        .where(model_calls.c.run_id == run_id)
        .order_by(model_calls.c.created_at, model_calls.c.id)
    ).all()
    stored = _stored(_run_row(conn, run_id), _step_rows(conn, run_id), call_rows)
    calls = [ModelCallView.from_row(c) for c in stored.model_calls]
    return RunView.from_row(
        stored.run,
        RunCost.of(calls),
        steps=[StepView.from_row(s) for s in stored.steps],
        model_calls=calls,
        approvals=approvals_of(conn, run_id),
    )


def steps_of(conn: sa.Connection, run_id: str, *, before: int | None = None) -> list[StepView]:
    """The run's steps in order (only those before step ``before`` when given)."""
    stored = _stored(_run_row(conn, run_id), _step_rows(conn, run_id, before))
    return [StepView.from_row(s) for s in stored.steps]


def runs_with_steps(conn: sa.Connection, where: RunFilter = RunFilter()) -> list[RunView]:
    """Runs oldest first, each with its steps (not its model calls or approvals): two
    queries, whatever the number of runs."""
    listed = _runs_query(where)
    run_rows = conn.execute(listed.order_by(runs.c.created_at, runs.c.id)).all()
    ids = listed.subquery()
    query = (
        sa.select(*_STEP_COLUMNS)
        .where(steps.c.run_id.in_(sa.select(ids.c.id)))
        .order_by(steps.c.run_id, steps.c.idx)
    )
    by_run: dict[str, list[Any]] = {}
    for step in conn.execute(query):
        by_run.setdefault(step.run_id, []).append(step)
    found = []
    for row in run_rows:
        stored = _stored(row, by_run.get(row.id, ()))
        found.append(
            RunView.from_row(
                stored.run,
                _cost_of(stored.run),
                steps=[StepView.from_row(s) for s in stored.steps],
            )
        )
    return found


def approvals_of(conn: sa.Connection, run_id: str) -> list[ApprovalView]:
    """The run's approval requests, by step."""
    query = sa.select(approvals).where(approvals.c.run_id == run_id)
    return [ApprovalView.from_row(r) for r in conn.execute(query.order_by(approvals.c.step))]


def approvals_between(
    conn: sa.Connection, since: datetime, until: datetime, *, tenant: str | None = None
) -> list[ApprovalView]:
    """Approval requests made or decided in ``[since, until)``, oldest first."""
    query = sa.select(approvals).where(
        sa.or_(
            sa.and_(approvals.c.created_at >= utc(since), approvals.c.created_at < utc(until)),
            sa.and_(approvals.c.decided_at >= utc(since), approvals.c.decided_at < utc(until)),
        )
    )
    if tenant is not None:
        query = query.where(approvals.c.tenant == tenant)
    query = query.order_by(approvals.c.created_at, approvals.c.id)
    return [ApprovalView.from_row(r) for r in conn.execute(query)]


def run_tenant(conn: sa.Connection, run_id: str) -> str | None:
    """The run's tenant, or ``None`` for an unknown run: for access checks before a read."""
    query = sa.select(runs.c.tenant).where(runs.c.id == run_id)
    found: str | None = conn.execute(query).scalar_one_or_none()
    return found


def run_tenants(conn: sa.Connection) -> set[str]:
    """Every tenant with a run."""
    return {t for (t,) in conn.execute(sa.select(runs.c.tenant).distinct())}


def stored_conversation(conn: sa.Connection, run_id: str) -> Mapping[str, Any] | None:
    """An agent run's conversation as stored (sealed); ``None`` for other runs."""
    query = sa.select(runs.c.conversation).where(runs.c.id == run_id)
    stored: Mapping[str, Any] | None = conn.execute(query).scalar()
    return stored


@dataclass(frozen=True)
class StoredRows:
    """A run's rows exactly as stored, every column: for checks that scan what is kept."""

    run: Mapping[str, Any]
    steps: tuple[Mapping[str, Any], ...]
    approvals: tuple[Mapping[str, Any], ...]
    model_calls: tuple[Mapping[str, Any], ...]


def stored_rows(conn: sa.Connection, run_id: str) -> StoredRows:
    """Every row the store keeps for the run, as stored. Raises ``RunNotFound``."""
    run = conn.execute(sa.select(runs).where(runs.c.id == run_id)).first()
    if run is None:
        raise RunNotFound(_NOT_FOUND.format(run_id))

    def rows(table: sa.Table, *order: sa.ColumnElement[Any]) -> tuple[Mapping[str, Any], ...]:
        query = sa.select(table).where(table.c.run_id == run_id).order_by(*order)
        return tuple(dict(r._mapping) for r in conn.execute(query))

    return StoredRows(
        run=dict(run._mapping),
        steps=rows(steps, steps.c.idx),
        approvals=rows(approvals, approvals.c.id),
        model_calls=rows(model_calls, model_calls.c.created_at, model_calls.c.id),
    )
