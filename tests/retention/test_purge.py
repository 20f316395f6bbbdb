"""Purging expired payloads and finished runs: what goes, what stays, the chain verifies."""

from __future__ import annotations

import json

import sqlalchemy as sa

from proctor import CallStatus
from proctor.retention.settings import Kind
from proctor.store.tables import approvals, audit_entries, audit_payloads, runs, steps
from tests.audit.conftest import KINDS, LAST, TENANT, Logged, governed_run
from tests.shop import Env

from .conftest import purge_now, retention

PAYLOADS_30D = retention(default={"payloads": "30d"})


def bodies(logged: Logged) -> dict[int, str]:
    query = (
        sa.select(audit_entries.c.seq, audit_payloads.c.body)
        .join(audit_payloads, audit_payloads.c.entry_id == audit_entries.c.entry_id)
        .where(audit_entries.c.tenant == TENANT)
    )
    with logged.attacker.engine.connect() as conn:
        return {int(seq): body for seq, body in conn.execute(query)}


async def test_expired_payloads_lose_their_body_and_the_chain_verifies_them_as_purged(
    logged: Logged,
) -> None:
    envelopes = logged.attacker.entries()
    report = purge_now(logged.rt, PAYLOADS_30D, days_later=31)

    (purged,) = report.purged
    assert (purged.tenant, purged.kind, purged.count) == (TENANT, Kind.PAYLOADS, LAST)
    assert purged.rule == "retention.default.payloads=30d"
    assert purged.oldest is not None
    assert purged.newest is not None
    assert purged.oldest <= purged.newest < purged.cutoff
    # Bodies gone; every envelope, with its payload hash, exactly as it was.
    after = logged.attacker.entries()
    assert after[:LAST] == envelopes
    assert [b for seq, b in sorted(bodies(logged).items()) if seq <= LAST] == [""] * LAST
    # The purge is itself an entry of the chain, and its record stays readable.
    record = after[LAST]
    assert record.kind == "retention.purged"
    payload = json.loads(logged.attacker.body(record.entry_id))
    assert payload["count"] == LAST
    assert (payload["first_seq"], payload["last_seq"]) == (1, LAST)
    assert payload["rule"] == "retention.default.payloads=30d"

    verified = logged.rt.verify_audit()
    assert verified.ok, verified.problems
    assert verified.checked == LAST + 1
    assert [p.seq for p in verified.purged] == list(range(1, LAST + 1))
    assert {p.rule for p in verified.purged} == {"retention.default.payloads=30d"}


async def test_nothing_younger_than_its_time_to_live_is_purged(logged: Logged) -> None:
    report = purge_now(logged.rt, PAYLOADS_30D, days_later=29)
    assert report.total == 0
    assert len(logged.attacker.entries()) == LAST  # not even a purge entry
    assert all(bodies(logged).values())


async def test_a_dry_run_counts_what_would_go_and_changes_nothing(logged: Logged) -> None:
    before = bodies(logged)
    dry = purge_now(logged.rt, PAYLOADS_30D, days_later=31, dry_run=True)
    assert dry.dry_run
    assert [(p.kind, p.count) for p in dry.purged] == [(Kind.PAYLOADS, LAST)]
    assert bodies(logged) == before
    assert len(logged.attacker.entries()) == LAST
    real = purge_now(logged.rt, PAYLOADS_30D)
    assert real.total == dry.total


async def test_purging_again_finds_nothing_more(logged: Logged) -> None:
    assert purge_now(logged.rt, PAYLOADS_30D, days_later=31).total == LAST
    again = purge_now(logged.rt, PAYLOADS_30D, days_later=60)
    # The purge record itself is kept forever: it is what accounts for the purge.
    assert again.total == 0
    assert logged.rt.verify_audit().ok


async def test_large_purges_go_in_batches_each_recorded_in_the_chain(logged: Logged) -> None:
    report = purge_now(logged.rt, PAYLOADS_30D, days_later=31, batch_size=5)
    (purged,) = report.purged
    assert (purged.count, purged.batches) == (LAST, 3)
    records = [e for e in logged.attacker.entries() if e.kind == "retention.purged"]
    ranges = [
        (p["first_seq"], p["last_seq"], p["count"])
        for p in (json.loads(logged.attacker.body(e.entry_id)) for e in records)
    ]
    assert ranges == [(1, 5, 5), (6, 10, 5), (11, 14, 4)]
    verified = logged.rt.verify_audit()
    assert verified.ok, verified.problems
    assert len(verified.purged) == LAST


async def test_a_finished_run_keeps_its_steps_but_not_what_they_carried(logged: Logged) -> None:
    report = purge_now(logged.rt, retention(default={"runs": "30d"}), days_later=31)
    assert [(p.kind, p.count) for p in report.purged] == [(Kind.RUNS, 1)]
    with logged.attacker.engine.connect() as conn:
        run = conn.execute(sa.select(runs).where(runs.c.id == logged.run_id)).one()
        rows = conn.execute(
            sa.select(steps).where(steps.c.run_id == logged.run_id).order_by(steps.c.idx)
        ).all()
        decided = conn.execute(sa.select(approvals)).one()
    assert run.purged_at is not None
    assert run.conversation is None
    assert run.state == "completed"
    assert [s.tool for s in rows] == ["lookup", "refund", "refund", "refund"]
    assert all(s.args == {} and s.result is None for s in rows)
    assert all(s.sealed_args is None and s.sealed_result is None for s in rows)
    # What the chain and an auditor need stays: status, decision, hash, idempotency key.
    assert [s.status for s in rows] == ["succeeded", "succeeded", "denied", "succeeded"]
    assert all(s.args_hash and s.idempotency_key and s.decision for s in rows)
    assert (decided.decided_by, decided.decision_reason) == ("sam", "checked the photos")
    # The audit payloads are another kind, with no time to live here.
    assert all(bodies(logged).values())
    record = json.loads(logged.attacker.body(logged.attacker.entries()[-1].entry_id))
    assert (record["what"], record["run_ids"]) == ("runs", [logged.run_id])
    assert logged.rt.verify_audit().ok


async def test_a_run_still_in_flight_is_never_purged(logged: Logged) -> None:
    rt = logged.rt
    run = await rt.start_run(logged.env.spec())
    held = await run.call("refund", {"order_id": "A-2", "amount": "500.00"}, reason="late")
    assert held.status is CallStatus.AWAITING_APPROVAL
    live = {e.seq for e in logged.attacker.entries() if e.run_id == run.id}
    before = bodies(logged)

    report = purge_now(rt, retention(default={"payloads": "1d", "runs": "1d"}), days_later=400)

    counts = {p.kind: p.count for p in report.purged}
    assert counts == {Kind.PAYLOADS: LAST, Kind.RUNS: 1}
    after = bodies(logged)
    assert {seq: after[seq] for seq in live} == {seq: before[seq] for seq in live}
    with logged.attacker.engine.connect() as conn:
        (args,) = conn.execute(sa.select(steps.c.args).where(steps.c.run_id == run.id)).one()
        (purged_at,) = conn.execute(sa.select(runs.c.purged_at).where(runs.c.id == run.id)).one()
    assert args == {"order_id": "A-2", "amount": "500.00"}
    assert purged_at is None
    assert rt.verify_audit().ok


async def test_each_tenant_is_purged_under_its_own_rule(env: Env) -> None:
    rt = env.runtime()
    await governed_run(env, rt, tenant="acme")
    await governed_run(env, rt, tenant="globex")
    settings = retention(default={"payloads": "90d"}, tenants={"acme": {"payloads": "30d"}})

    report = purge_now(rt, settings, days_later=31)

    assert [(p.tenant, p.count, p.rule) for p in report.purged] == [
        ("acme", len(KINDS), "retention.tenants.acme.payloads=30d"),
        ("globex", 0, "retention.default.payloads=90d"),
    ]
    later = purge_now(rt, settings, days_later=60, tenant="globex")
    assert [(p.tenant, p.count) for p in later.purged] == [("globex", len(KINDS))]
    verified = rt.verify_audit()
    assert verified.ok, verified.problems
    assert {p.tenant for p in verified.purged} == {"acme", "globex"}
