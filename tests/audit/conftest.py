"""A governed run's audit log, and an attacker with write access to the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from proctor import Approver, CallStatus, Runtime
from proctor.audit import Envelope
from proctor.store.tables import audit_entries, audit_payloads
from tests.cli.conftest import cli  # noqa: F401  (fixture)
from tests.shop import Env

TENANT = "acme"

# What the run built by ``logged`` writes to its tenant's chain, in order.
KINDS = [
    "run.opened",
    "action.intent",  # 2: lookup
    "action.outcome",
    "action.intent",  # 4: a small refund
    "action.outcome",
    "action.denied",  # 6: a refund no policy permits
    "run.mode",  # 7: the denial puts the rest of the run in safe mode
    "action.approval_requested",  # 8: a refund that needs a supervisor
    "run.state",  # 9: running -> awaiting_approval
    "approval.decided",  # 10
    "run.state",  # 11: awaiting_approval -> running
    "action.intent",  # 12: the approved refund
    "action.outcome",
    "run.state",  # 14: completed, and the signed checkpoint
]
LAST = len(KINDS)


async def governed_run(env: Env, rt: Runtime, tenant: str = TENANT) -> str:
    """Allowed calls, a denied call, an approval requested and given, completion."""
    run = await rt.start_run(env.spec(tenant=tenant))
    assert (await run.call("lookup", {"order_id": "A-1"})).status is CallStatus.EXECUTED
    small = await run.call("refund", {"order_id": "A-1", "amount": "20.00"})
    assert small.status is CallStatus.EXECUTED
    big = await run.call("refund", {"order_id": "A-1", "amount": "5000.00"})
    assert big.status is CallStatus.DENIED
    held = await run.call("refund", {"order_id": "A-1", "amount": "500.00"}, reason="damaged")
    assert held.status is CallStatus.AWAITING_APPROVAL
    assert held.approval_id is not None
    rt.approvals.approve(held.approval_id, Approver("sam", "supervisor"), "checked the photos")
    run = await rt.resume(run.id)
    resumed = await run.resume_pending()
    assert resumed is not None
    assert resumed.status is CallStatus.EXECUTED
    await run.complete("done")
    return run.id


class Attacker:
    """Someone who can write to the database but holds no audit key."""

    def __init__(self, db_url: str) -> None:
        self.engine = sa.create_engine(db_url)

    def sql(self, statement: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(statement), params)

    def entries(self, tenant: str = TENANT) -> list[Envelope]:
        query = (
            sa.select(audit_entries)
            .where(audit_entries.c.tenant == tenant)
            .order_by(audit_entries.c.seq)
        )
        with self.engine.connect() as conn:
            return [Envelope.of_row(r) for r in conn.execute(query)]

    def entry(self, seq: int, tenant: str = TENANT) -> Envelope:
        (found,) = [e for e in self.entries(tenant) if e.seq == seq]
        return found

    def body(self, entry_id: str) -> str:
        query = sa.select(audit_payloads.c.body).where(audit_payloads.c.entry_id == entry_id)
        with self.engine.connect() as conn:
            return str(conn.execute(query).scalar_one())

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class Logged:
    """A finished run's log, the runtime that wrote it, and someone about to tamper with it."""

    env: Env
    rt: Runtime
    run_id: str
    attacker: Attacker

    def id_of(self, seq: int, tenant: str = TENANT) -> str:
        """The entry id stored at ``seq`` now."""
        return self.attacker.entry(seq, tenant).entry_id


@pytest.fixture
async def logged(env: Env) -> AsyncIterator[Logged]:
    rt = env.runtime()
    run_id = await governed_run(env, rt)
    attacker = Attacker(env.db_url)
    yield Logged(env, rt, run_id, attacker)
    attacker.close()
