"""Budgets: caps per run, caps per day for workflows and tenants, and the usage against them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.dialects import postgresql, sqlite

from proctor.clock import Clock
from proctor.errors import BudgetExceeded
from proctor.ids import new_id
from proctor.store import Store
from proctor.store.tables import budget_holds, budget_usage, runs


class DailyCaps(BaseModel):
    """Caps per UTC day that hold across runs and workers (for a workflow or a tenant)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    usd: Decimal | None = Field(default=None, ge=0)
    """Money spent on models per day."""
    model_tokens: int | None = Field(default=None, ge=0)
    """Model tokens per day."""


class RunUsage(Protocol):
    """What a run has used so far, as the caps count it."""

    @property
    def tool_calls(self) -> int: ...
    @property
    def model_tokens(self) -> int: ...
    @property
    def usd(self) -> Decimal: ...


class BudgetCaps(BaseModel):
    """Caps for one run. ``None`` means no cap; ``0`` means nothing is allowed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tool_calls: int | None = Field(default=None, ge=0)
    """Side-effecting tool calls the run may make."""
    model_tokens: int | None = Field(default=None, ge=0)
    """Model tokens (input, cached input, output and reasoning together)."""
    usd: Decimal | None = Field(default=None, ge=0)
    """Money the run may spend on models and priced tools."""
    wall_time_s: float | None = Field(default=None, ge=0)
    """Active seconds from start, not counting time spent awaiting approval."""

    def filled_from(self, defaults: BudgetCaps) -> BudgetCaps:
        """These caps, with each one left open taken from ``defaults``."""
        values = {
            name: getattr(defaults, name) if getattr(self, name) is None else getattr(self, name)
            for name in type(self).model_fields
        }
        return BudgetCaps(**values)


def run_cap_breach(caps: BudgetCaps, used: RunUsage, active_s: float) -> str | None:
    """Which of the run's caps its next call would go past, if any."""
    if caps.tool_calls is not None and used.tool_calls >= caps.tool_calls:
        return f"tool calls {used.tool_calls} of {caps.tool_calls}"
    if caps.model_tokens is not None and used.model_tokens >= caps.model_tokens:
        return f"model tokens {used.model_tokens} of {caps.model_tokens}"
    if caps.usd is not None and used.usd >= caps.usd:
        return f"USD {used.usd} of {caps.usd}"
    if caps.wall_time_s is not None and active_s >= caps.wall_time_s:
        return f"wall time {active_s:.1f}s of {caps.wall_time_s}s"
    return None


def model_cap_breach(
    caps: BudgetCaps, used: RunUsage, worst_usd: Decimal, worst_tokens: int
) -> str | None:
    """Which of the run's caps a model call could cross at its worst, if any."""
    if caps.model_tokens is not None and used.model_tokens + worst_tokens > caps.model_tokens:
        return f"model tokens {used.model_tokens} + up to {worst_tokens} of {caps.model_tokens}"
    if caps.usd is not None and used.usd + worst_usd > caps.usd:
        return f"USD {used.usd} + up to {worst_usd:.6f} of {caps.usd}"
    return None


NANO = Decimal(1_000_000_000)


def nano_usd(usd: Decimal, *, round_up: bool) -> int:
    """USD as whole billionths: exact integers on every database."""
    scaled = usd * NANO
    whole = int(scaled)
    return whole + 1 if round_up and scaled > whole else whole


@dataclass(frozen=True)
class DailyScope:
    """One budget that holds across runs for a day: a tenant's, or a workflow's in a tenant."""

    key: str
    caps: DailyCaps | None

    def describe(self) -> str:
        kind, _, name = self.key.partition(":")
        return f"the {kind} budget of {name}"


@dataclass(frozen=True)
class Reservation:
    """Worst-case cost held against daily budgets until the call's real cost is known."""

    id: str
    day: str
    scopes: tuple[DailyScope, ...]
    nano_usd: int
    tokens: int


def daily_scopes(
    tenant: str,
    workflow: str,
    tenant_caps: Mapping[str, DailyCaps],
    workflow_caps: Mapping[str, DailyCaps],
) -> tuple[DailyScope, ...]:
    """The tenant's and the workflow's daily scopes, with their caps (``"*"`` as fallback)."""
    return (
        DailyScope(f"tenant:{tenant}", tenant_caps.get(tenant, tenant_caps.get("*"))),
        DailyScope(
            f"workflow:{tenant}/{workflow}", workflow_caps.get(workflow, workflow_caps.get("*"))
        ),
    )


@dataclass(frozen=True)
class DailyUse:
    """A daily scope's use: spent, and held for calls still being made."""

    usd: Decimal
    tokens: int
    reserved_usd: Decimal
    reserved_tokens: int


class DailyLedger:
    """Usage per scope and UTC day, shared by every worker through the store.

    A model call first reserves its worst case: one conditional UPDATE per
    capped scope adds the reservation only if spent + reserved + it stays within
    the cap, so two workers can never both take the last dollar. After the call
    the reservation becomes the real cost. Each reservation is also a row in
    ``budget_holds``, so the hold of a worker that died in between is found and
    released once its run's lease has lapsed (``release_abandoned``).
    """

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def reserve(
        self, run_id: str, scopes: tuple[DailyScope, ...], day: str, usd: Decimal, tokens: int
    ) -> Reservation:
        """Hold ``usd`` and ``tokens`` in every scope, or raise ``BudgetExceeded`` naming it."""
        held = Reservation(new_id("hold"), day, scopes, nano_usd(usd, round_up=True), tokens)
        with self._store.write() as conn:
            for scope in scopes:
                self._ensure_row(conn, scope.key, day)
                if not self._hold(conn, scope, held):  # raising rolls every hold back
                    raise BudgetExceeded(
                        f"{scope.describe()} for {day} cannot cover this call's worst case "
                        f"(${usd:.6f}, {tokens} tokens)"
                    )
            conn.execute(
                budget_holds.insert(),
                {
                    "id": held.id,
                    "run_id": run_id,
                    "day": day,
                    "scopes": [scope.key for scope in scopes],
                    "nano_usd": held.nano_usd,
                    "tokens": tokens,
                    "created_at": self._clock.now(),
                },
            )
        return held

    def settle(self, conn: sa.Connection, held: Reservation, usd: Decimal, tokens: int) -> None:
        """Turn a reservation into the real cost of the call, in the caller's transaction."""
        self._move(conn, held, nano_usd(usd, round_up=True), tokens)

    def release(self, held: Reservation) -> None:
        """Drop a reservation whose call never produced an answer."""
        with self._store.write() as conn:
            self._move(conn, held, 0, 0)

    def release_abandoned(self, now: datetime, lease_s: float) -> int:
        """Release holds whose worker is gone: its run's lease lapsed (or the run is no
        longer held) and the hold is older than a lease. Returns how many."""
        c, r = budget_holds.c, runs.c
        older = now - timedelta(seconds=lease_s)
        query = (
            sa.select(budget_holds)
            .select_from(budget_holds.outerjoin(runs, runs.c.id == c.run_id))
            .where(
                c.created_at < older,
                sa.or_(r.id.is_(None), r.owner.is_(None), r.lease_until < now),
            )
        )
        with self._store.read() as conn:
            abandoned = list(conn.execute(query))
        for row in abandoned:
            held = Reservation(
                row.id,
                row.day,
                tuple(DailyScope(key, None) for key in row.scopes),
                int(row.nano_usd),
                int(row.tokens),
            )
            with self._store.write() as conn:
                self._move(conn, held, 0, 0)
        return len(abandoned)

    def usage(self, scope: str, day: str) -> tuple[Decimal, int]:
        """USD and tokens spent (reservations not included) in a scope on a day."""
        with self._store.read() as conn:
            row = conn.execute(
                sa.select(budget_usage.c.nano_usd_spent, budget_usage.c.tokens_spent).where(
                    budget_usage.c.scope == scope, budget_usage.c.day == day
                )
            ).first()
        if row is None:
            return Decimal(0), 0
        return Decimal(row.nano_usd_spent) / NANO, int(row.tokens_spent)

    def usage_on(self, day: str) -> dict[str, DailyUse]:
        """Every scope's use on a day (as ``daily_scopes`` names them), reservations apart."""
        u = budget_usage.c
        with self._store.read() as conn:
            rows = conn.execute(sa.select(budget_usage).where(u.day == day)).all()
        return {
            row.scope: DailyUse(
                Decimal(row.nano_usd_spent) / NANO,
                int(row.tokens_spent),
                Decimal(row.nano_usd_reserved) / NANO,
                int(row.tokens_reserved),
            )
            for row in rows
        }

    @staticmethod
    def _move(conn: sa.Connection, held: Reservation, nano_spent: int, tokens_spent: int) -> None:
        """Spend what the call cost and give back its hold: the hold only once, whoever
        releases it (a worker that outlived its lease, or recovery)."""
        c = budget_usage.c
        still_held = conn.execute(budget_holds.delete().where(budget_holds.c.id == held.id))
        if still_held.rowcount != 1:
            held = Reservation(held.id, held.day, held.scopes, 0, 0)
        for scope in held.scopes:
            conn.execute(
                budget_usage.update()
                .where(c.scope == scope.key, c.day == held.day)
                .values(
                    nano_usd_reserved=c.nano_usd_reserved - held.nano_usd,
                    tokens_reserved=c.tokens_reserved - held.tokens,
                    nano_usd_spent=c.nano_usd_spent + nano_spent,
                    tokens_spent=c.tokens_spent + tokens_spent,
                )
            )

    @staticmethod
    def _ensure_row(conn: sa.Connection, scope: str, day: str) -> None:
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
            budget_usage
        )
        conn.execute(
            insert.values(
                scope=scope,
                day=day,
                nano_usd_spent=0,
                nano_usd_reserved=0,
                tokens_spent=0,
                tokens_reserved=0,
            ).on_conflict_do_nothing()
        )

    @staticmethod
    def _hold(conn: sa.Connection, scope: DailyScope, held: Reservation) -> bool:
        c = budget_usage.c
        conditions = [c.scope == scope.key, c.day == held.day]
        caps = scope.caps
        if caps is not None and caps.usd is not None:
            cap = nano_usd(caps.usd, round_up=False)
            conditions.append(c.nano_usd_spent + c.nano_usd_reserved + held.nano_usd <= cap)
        if caps is not None and caps.model_tokens is not None:
            conditions.append(c.tokens_spent + c.tokens_reserved + held.tokens <= caps.model_tokens)
        moved = conn.execute(
            budget_usage.update()
            .where(*conditions)
            .values(
                nano_usd_reserved=c.nano_usd_reserved + held.nano_usd,
                tokens_reserved=c.tokens_reserved + held.tokens,
            )
        )
        return bool(moved.rowcount == 1)
