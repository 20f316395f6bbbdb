"""Retention decides from the entry's time as the chain hashed it, not the payload row's."""

from __future__ import annotations

from proctor.audit import verify_store
from tests.audit.conftest import Logged

from .conftest import purge_now, retention

DENIED = 6
THIRTY_DAYS = retention(default={"payloads": "30d"})


async def test_a_backdated_payload_row_is_not_purged_before_its_time(logged: Logged) -> None:
    entry_id = logged.id_of(DENIED)
    body = logged.attacker.body(entry_id)
    # Someone with write access makes a fresh payload look a year old...
    logged.attacker.sql(
        "UPDATE audit_payloads SET created_at = :c WHERE entry_id = :e",
        c="2025-01-01 00:00:00",
        e=entry_id,
    )
    report = purge_now(logged.rt, THIRTY_DAYS, days_later=1)
    # ...but its entry says it was written yesterday: it stays.
    assert report.total == 0
    assert logged.attacker.body(entry_id) == body
    with logged.rt.store.read() as conn:
        assert verify_store(conn, [logged.rt.key.verify_key]).ok


async def test_payloads_expire_by_their_entrys_time(logged: Logged) -> None:
    report = purge_now(logged.rt, THIRTY_DAYS, days_later=31)
    (payloads,) = [p for p in report.purged if p.kind.value == "payloads"]
    assert payloads.count == 14
    assert payloads.oldest is not None
    assert payloads.newest is not None
    assert payloads.oldest <= payloads.newest < payloads.cutoff
    with logged.rt.store.read() as conn:
        checked = verify_store(conn, [logged.rt.key.verify_key])
    assert checked.ok, checked.problems
    assert len(checked.purged) == 14
