"""Purged payloads verify as purged; a deletion dressed up as a purge does not."""

from __future__ import annotations

import json

from proctor import CallStatus
from proctor.audit import Tamper
from proctor.retention.settings import RetentionSettings
from tests.retention.conftest import purge_now

from .conftest import LAST, TENANT, Logged

DENIED = 6
PAYLOADS_30D = RetentionSettings.model_validate({"default": {"payloads": "30d"}})


def purge_record(logged: Logged) -> tuple[int, str]:
    (entry,) = [e for e in logged.attacker.entries() if e.kind == "retention.purged"]
    return entry.seq, entry.entry_id


async def test_purged_entries_are_counted_and_named_not_reported_as_tampering(
    logged: Logged,
) -> None:
    purge_now(logged.rt, PAYLOADS_30D, days_later=31)
    report = logged.rt.verify_audit()
    assert report.ok, report.problems
    assert len(report.purged) == LAST
    denied = next(p for p in report.purged if p.seq == DENIED)
    assert denied.entry_id == logged.id_of(DENIED)
    assert str(denied).startswith(f"tenant {TENANT}, entry {DENIED} ({denied.entry_id}): ")
    assert "under retention.default.payloads=30d" in str(denied)


async def test_a_payload_emptied_and_marked_purged_without_a_purge_entry_is_deleted(
    logged: Logged,
) -> None:
    entry_id = logged.id_of(DENIED)
    logged.attacker.sql(
        "UPDATE audit_payloads SET body = '', purged_at = created_at, "
        "purge_rule = 'retention.default.payloads=1d' WHERE entry_id = :e",
        e=entry_id,
    )
    report = logged.rt.verify_audit()
    (problem,) = report.problems
    assert (problem.seq, problem.entry_id, problem.tamper) == (DENIED, entry_id, Tamper.DELETED)
    assert "no retention.purged entry" in problem.detail
    assert report.purged == []


async def test_a_missing_payload_is_still_deleted_after_a_purge(logged: Logged) -> None:
    # Purge nothing of this run (too young), so the chain holds a purge-free log...
    purge_now(logged.rt, PAYLOADS_30D, days_later=1)
    entry_id = logged.id_of(DENIED)
    logged.attacker.sql("DELETE FROM audit_payloads WHERE entry_id = :e", e=entry_id)
    (problem,) = logged.rt.verify_audit().problems
    assert (problem.seq, problem.tamper, problem.detail) == (
        DENIED,
        Tamper.DELETED,
        "its payload is missing",
    )


async def test_a_payload_row_removed_after_its_purge_is_deleted(logged: Logged) -> None:
    purge_now(logged.rt, PAYLOADS_30D, days_later=31)
    entry_id = logged.id_of(DENIED)
    logged.attacker.sql("DELETE FROM audit_payloads WHERE entry_id = :e", e=entry_id)
    report = logged.rt.verify_audit()
    assert [(p.seq, p.tamper) for p in report.problems] == [(DENIED, Tamper.DELETED)]
    assert len(report.purged) == LAST - 1


async def test_a_purge_mark_on_a_payload_still_there_but_altered_is_modified(
    logged: Logged,
) -> None:
    purge_now(logged.rt, PAYLOADS_30D, days_later=31)
    entry_id = logged.id_of(DENIED)
    logged.attacker.sql(
        "UPDATE audit_payloads SET body = :b WHERE entry_id = :e",
        b='{"kind":"action.denied","tool":"refund"}',
        e=entry_id,
    )
    (problem,) = logged.rt.verify_audit().problems
    assert (problem.seq, problem.tamper, problem.detail) == (
        DENIED,
        Tamper.MODIFIED,
        "its payload was changed",
    )


async def test_an_unpurged_payload_pointing_at_a_real_purge_entry_beyond_its_range_is_deleted(
    logged: Logged,
) -> None:
    """The purge record covers 1..LAST; a later entry emptied in its name is caught."""
    purge_now(logged.rt, PAYLOADS_30D, days_later=31)
    seq, record_id = purge_record(logged)
    run = await logged.rt.start_run(logged.env.spec())
    await run.complete("done")
    later = next(e for e in logged.attacker.entries() if e.run_id == run.id)
    logged.attacker.sql(
        "UPDATE audit_payloads SET body = '', purged_at = created_at, purge_rule = 'r', "
        "purge_entry = :p WHERE entry_id = :e",
        p=record_id,
        e=later.entry_id,
    )
    problems = logged.rt.verify_audit().problems
    assert [(p.seq, p.tamper) for p in problems] == [(later.seq, Tamper.DELETED)]
    assert f"by entry {seq}, which purged entries 1-{LAST} only" in problems[0].detail


async def test_a_skipped_payload_emptied_in_the_name_of_a_purge_is_deleted(
    logged: Logged,
) -> None:
    """A purge skips the entries of runs in flight inside its range; its count says so."""
    held_run = await logged.rt.start_run(logged.env.spec())
    held = await held_run.call("refund", {"order_id": "A-2", "amount": "500.00"}, reason="x")
    assert held.status is CallStatus.AWAITING_APPROVAL
    done = await logged.rt.start_run(logged.env.spec())
    await done.complete("done")
    skipped = [e for e in logged.attacker.entries() if e.run_id == held_run.id]
    purge_now(logged.rt, PAYLOADS_30D, days_later=31)
    _, record_id = purge_record(logged)
    record = json.loads(logged.attacker.body(record_id))
    assert record["first_seq"] < skipped[0].seq < record["last_seq"]
    assert logged.rt.verify_audit().ok

    logged.attacker.sql(
        "UPDATE audit_payloads SET body = '', purged_at = created_at, purge_rule = :r, "
        "purge_entry = :p WHERE entry_id = :e",
        r=record["rule"],
        p=record_id,
        e=skipped[0].entry_id,
    )
    problems = logged.rt.verify_audit().problems
    assert skipped[0].seq in {p.seq for p in problems}
    assert {p.tamper for p in problems} == {Tamper.DELETED}
    claimed = record["count"] + 1
    assert f"which purged {record['count']} payloads, but {claimed} claim it" in problems[0].detail


async def test_a_forged_purge_record_is_modified(logged: Logged) -> None:
    purge_now(logged.rt, PAYLOADS_30D, days_later=31)
    seq, record_id = purge_record(logged)
    body = json.loads(logged.attacker.body(record_id))
    body["rule"] = "retention.default.payloads=1d"
    logged.attacker.sql(
        "UPDATE audit_payloads SET body = :b WHERE entry_id = :e",
        b=json.dumps(body),
        e=record_id,
    )
    problems = {(p.seq, p.tamper) for p in logged.rt.verify_audit().problems}
    # The record is modified, and no longer accounts for the payloads it purged.
    assert problems == {(seq, Tamper.MODIFIED)} | {(s, Tamper.DELETED) for s in range(1, seq)}
