"""Tampering with the stored audit log, each kind, as someone with database access would."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from proctor.audit import GENESIS, Problem, SigningKey, Tamper
from proctor.audit.chain import checkpoint_message, envelope_hash
from proctor.jsonvalue import canonical_json, sha256_hex

from .conftest import KINDS, LAST, TENANT, Attacker, Logged, governed_run

DENIED = 6  # the action.denied entry
DECIDED = 10  # the approval.decided entry


def first_problem(logged: Logged) -> Problem:
    report = logged.rt.verify_audit()
    assert not report.ok
    assert report.checked == len(logged.attacker.entries())
    return report.problems[0]


def fresh_key() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def rewrite_from(attacker: Attacker, seq: int) -> None:
    """Recompute every entry hash from ``seq`` on, and the head, as the algorithm does."""
    entries = attacker.entries()
    prev_hash = entries[seq - 2].entry_hash if seq > 1 else GENESIS
    for e in entries[seq - 1 :]:
        payload_hash = sha256_hex(attacker.body(e.entry_id))
        entry_hash = envelope_hash(
            e.tenant,
            e.seq,
            e.entry_id,
            e.kind,
            e.run_id,
            e.step,
            e.created_at,
            e.bundle_version,
            payload_hash,
            prev_hash,
        )
        attacker.sql(
            "UPDATE audit_entries SET payload_hash = :p, prev_hash = :prev, entry_hash = :h "
            "WHERE tenant = :t AND seq = :s",
            p=payload_hash,
            prev=prev_hash,
            h=entry_hash,
            t=e.tenant,
            s=e.seq,
        )
        prev_hash = entry_hash
    attacker.sql(
        "UPDATE audit_heads SET seq = :s, head_hash = :h WHERE tenant = :t",
        s=entries[-1].seq,
        h=prev_hash,
        t=TENANT,
    )


def delete_entry(attacker: Attacker, seq: int) -> str:
    entry_id = attacker.entry(seq).entry_id
    attacker.sql("DELETE FROM audit_payloads WHERE entry_id = :e", e=entry_id)
    attacker.sql("DELETE FROM audit_entries WHERE tenant = :t AND seq = :s", t=TENANT, s=seq)
    return entry_id


# -- an untouched log ------------------------------------------------------------------


async def test_an_untouched_log_verifies_every_entry_and_its_checkpoint(logged: Logged) -> None:
    entries = logged.attacker.entries()
    assert [e.kind for e in entries] == KINDS
    assert [e.seq for e in entries] == list(range(1, LAST + 1))
    assert {e.run_id for e in entries} == {logged.run_id}
    with logged.attacker.engine.connect() as conn:
        checkpoint = conn.exec_driver_sql(
            "SELECT tenant, seq, head_hash, key_id FROM audit_checkpoints"
        ).one()
    assert tuple(checkpoint) == (TENANT, LAST, entries[-1].entry_hash, logged.rt.key.key_id)
    report = logged.rt.verify_audit()
    assert report.problems == []
    assert report.ok
    assert (report.checked, report.tenants, report.checkpoints) == (LAST, 1, 1)


async def test_a_runtime_built_later_verifies_the_log_with_the_same_key(logged: Logged) -> None:
    report = logged.env.runtime().verify_audit()
    assert report.ok, report.problems
    assert report.checked == LAST


# -- modified ----------------------------------------------------------------------------


async def test_a_modified_payload_is_named(logged: Logged) -> None:
    entry_id = logged.id_of(DENIED)
    body = logged.attacker.body(entry_id)
    forged = body.replace('"5000.00"', '"50.00"')
    assert forged != body
    logged.attacker.sql(
        "UPDATE audit_payloads SET body = :b WHERE entry_id = :e", b=forged, e=entry_id
    )
    report = logged.rt.verify_audit()
    assert report.problems == [
        Problem(TENANT, DENIED, entry_id, Tamper.MODIFIED, "its payload was changed")
    ]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("kind", "action.outcome"),
        ("created_at", "2025-12-31T23:59:59.000000+00:00"),
        ("run_id", "run_someone_else"),
        ("step", 7),
        ("bundle_version", "test-shop@000000000000"),
        ("payload_hash", "0" * 64),
        ("entry_hash", "f" * 64),
    ],
)
async def test_a_modified_envelope_field_is_named(
    logged: Logged, column: str, value: str | int
) -> None:
    entry_id = logged.id_of(4)
    logged.attacker.sql(
        f"UPDATE audit_entries SET {column} = :v WHERE tenant = :t AND seq = 4", v=value, t=TENANT
    )
    assert first_problem(logged) == Problem(
        TENANT, 4, entry_id, Tamper.MODIFIED, "its envelope (kind, run, time or hashes) was changed"
    )


async def test_a_chain_rewritten_after_a_signed_checkpoint_is_caught_by_the_checkpoint(
    logged: Logged,
) -> None:
    attacker = logged.attacker
    entry_id = logged.id_of(DENIED)
    forged = attacker.body(entry_id).replace('"5000.00"', '"50.00"')
    attacker.sql("UPDATE audit_payloads SET body = :b WHERE entry_id = :e", b=forged, e=entry_id)
    rewrite_from(attacker, DENIED)
    report = logged.rt.verify_audit()
    # Every hash and link is consistent again; only the signature remembers the old head.
    assert report.problems == [
        Problem(
            TENANT,
            LAST,
            logged.id_of(LAST),
            Tamper.MODIFIED,
            "the chain was rewritten: it differs from a signed checkpoint",
        )
    ]


async def test_a_chain_rewritten_after_deleting_its_checkpoints_is_caught(
    logged: Logged,
) -> None:
    attacker = logged.attacker
    entry_id = logged.id_of(DENIED)
    forged = attacker.body(entry_id).replace('"5000.00"', '"50.00"')
    attacker.sql("UPDATE audit_payloads SET body = :b WHERE entry_id = :e", b=forged, e=entry_id)
    rewrite_from(attacker, DENIED)
    attacker.sql("DELETE FROM audit_checkpoints")
    report = logged.rt.verify_audit()
    assert report.problems == [
        Problem(
            TENANT,
            LAST,
            logged.id_of(LAST),
            Tamper.DELETED,
            f"run {logged.run_id} ended here but no signed checkpoint covers it: "
            "the checkpoint signed when it ended was removed",
        )
    ]


# -- deleted -----------------------------------------------------------------------------


async def test_a_deleted_entry_in_the_middle_is_named(logged: Logged) -> None:
    after = logged.id_of(DENIED + 1)
    delete_entry(logged.attacker, DENIED)
    assert first_problem(logged) == Problem(
        TENANT,
        DENIED + 1,
        after,
        Tamper.DELETED,
        f"the entry before it is missing (expected entry {DENIED})",
    )


async def test_several_deleted_entries_are_named_as_a_range(logged: Logged) -> None:
    after = logged.id_of(8)
    for seq in (5, 6, 7):
        delete_entry(logged.attacker, seq)
    assert first_problem(logged) == Problem(
        TENANT, 8, after, Tamper.DELETED, "the entry before it is missing (expected entry 5-7)"
    )


async def test_a_deleted_payload_is_named(logged: Logged) -> None:
    entry_id = logged.id_of(DECIDED)
    logged.attacker.sql("DELETE FROM audit_payloads WHERE entry_id = :e", e=entry_id)
    report = logged.rt.verify_audit()
    assert report.problems == [
        Problem(TENANT, DECIDED, entry_id, Tamper.DELETED, "its payload is missing")
    ]


async def test_a_deleted_tail_entry_is_caught_by_the_head(logged: Logged) -> None:
    delete_entry(logged.attacker, LAST)
    report = logged.rt.verify_audit()
    assert report.checked == LAST - 1
    assert report.problems == [
        Problem(
            TENANT,
            LAST,
            None,
            Tamper.DELETED,
            f"the chain ends at {LAST - 1} but its head says {LAST}",
        ),
        Problem(
            TENANT,
            LAST,
            None,
            Tamper.DELETED,
            f"a signed checkpoint covers entry {LAST} but the chain ends at {LAST - 1}",
        ),
    ]


async def test_a_truncated_tail_with_the_head_moved_back_is_caught_by_the_checkpoint(
    logged: Logged,
) -> None:
    attacker = logged.attacker
    new_last = attacker.entry(LAST - 1)
    delete_entry(attacker, LAST)
    attacker.sql(
        "UPDATE audit_heads SET seq = :s, head_hash = :h WHERE tenant = :t",
        s=new_last.seq,
        h=new_last.entry_hash,
        t=TENANT,
    )
    problem = first_problem(logged)
    assert (problem.tenant, problem.seq, problem.tamper) == (TENANT, LAST, Tamper.DELETED)


# -- reordered ---------------------------------------------------------------------------


async def test_two_swapped_entries_are_named_as_reordered(logged: Logged) -> None:
    attacker = logged.attacker
    moved_up = logged.id_of(DENIED + 1)
    # (tenant, seq) is the primary key: swap through a free number.
    for old, new in ((DENIED, -1), (DENIED + 1, DENIED), (-1, DENIED + 1)):
        attacker.sql(
            "UPDATE audit_entries SET seq = :new WHERE tenant = :t AND seq = :old",
            new=new,
            old=old,
            t=TENANT,
        )
    assert first_problem(logged) == Problem(
        TENANT,
        DENIED,
        moved_up,
        Tamper.REORDERED,
        f"it follows entry {DENIED + 1}, which is stored after it",
    )


# -- inserted ----------------------------------------------------------------------------


def forge_entry(attacker: Attacker, seq: int, prev_hash: str, like: str) -> tuple[str, str]:
    """Insert a well-formed entry at ``seq`` linked to ``prev_hash``; its id and hash."""
    template = attacker.entry(seq - 1)
    entry_id = "aud_forged0000000000000000000000"
    body = canonical_json(
        {
            "kind": "action.intent",
            "tool": "refund",
            "args": {"order_id": "A-1", "amount": "900.00"},
            "reason": "forged",
            "decision": {},
            "idempotency_key": "x",
            "approval_id": None,
            "scopes": ["payments:refund"],
        }
    )
    payload_hash = sha256_hex(body)
    entry_hash = envelope_hash(
        TENANT,
        seq,
        entry_id,
        "action.intent",
        template.run_id,
        3,
        template.created_at,
        template.bundle_version,
        payload_hash,
        prev_hash,
    )
    attacker.sql(
        "INSERT INTO audit_entries (tenant, seq, entry_id, kind, run_id, step, created_at, "
        "bundle_version, payload_hash, prev_hash, entry_hash) VALUES (:t, :s, :e, "
        "'action.intent', :r, 3, :c, :v, :p, :prev, :h)",
        t=TENANT,
        s=seq,
        e=entry_id,
        r=template.run_id,
        c=template.created_at,
        v=template.bundle_version,
        p=payload_hash,
        prev=prev_hash,
        h=entry_hash,
    )
    attacker.sql(
        "INSERT INTO audit_payloads (entry_id, tenant, created_at, body) "
        "SELECT :e, tenant, created_at, :b FROM audit_payloads WHERE entry_id = :like",
        e=entry_id,
        b=body,
        like=like,
    )
    return entry_id, entry_hash


async def test_an_entry_inserted_in_the_middle_is_named(logged: Logged) -> None:
    attacker = logged.attacker
    k = DENIED
    displaced = logged.id_of(k)
    last_hash = attacker.entry(LAST).entry_hash
    # Make room at k: negate, then shift, so no two rows ever share a key.
    attacker.sql(
        "UPDATE audit_entries SET seq = -seq - 1 WHERE tenant = :t AND seq >= :k", t=TENANT, k=k
    )
    attacker.sql("UPDATE audit_entries SET seq = -seq WHERE tenant = :t AND seq < 0", t=TENANT)
    forge_entry(attacker, k, attacker.entry(k - 1).entry_hash, like=displaced)
    attacker.sql(
        "UPDATE audit_heads SET seq = :s, head_hash = :h WHERE tenant = :t",
        s=LAST + 1,
        h=last_hash,
        t=TENANT,
    )
    assert [e.seq for e in attacker.entries()] == list(range(1, LAST + 2))
    assert first_problem(logged) == Problem(
        TENANT,
        k + 1,
        displaced,
        Tamper.INSERTED,
        f"entry {k} is not part of the chain (nothing links to it)",
    )


async def test_an_entry_appended_behind_the_head_is_named(logged: Logged) -> None:
    attacker = logged.attacker
    forged_id, _ = forge_entry(
        attacker, LAST + 1, attacker.entry(LAST).entry_hash, like=logged.id_of(LAST)
    )
    report = logged.rt.verify_audit()
    assert report.checked == LAST + 1
    assert report.problems == [
        Problem(
            TENANT,
            LAST + 1,
            forged_id,
            Tamper.INSERTED,
            f"entries after {LAST} were added outside the log",
        )
    ]


# -- checkpoints -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("signature", "00" * 64),
        ("head_hash", "0" * 64),
        ("signed_at", "2030-01-01T00:00:00.000000+00:00"),
    ],
)
async def test_an_altered_checkpoint_has_a_bad_signature(
    logged: Logged, column: str, value: str
) -> None:
    logged.attacker.sql(
        f"UPDATE audit_checkpoints SET {column} = :v WHERE tenant = :t", v=value, t=TENANT
    )
    report = logged.rt.verify_audit()
    assert report.problems == [
        Problem(
            TENANT, LAST, None, Tamper.BAD_SIGNATURE, "the checkpoint signature does not verify"
        )
    ]


async def test_a_flipped_signature_bit_is_a_bad_signature(logged: Logged) -> None:
    attacker = logged.attacker
    with attacker.engine.connect() as conn:
        (signature,) = conn.exec_driver_sql("SELECT signature FROM audit_checkpoints").one()
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    attacker.sql("UPDATE audit_checkpoints SET signature = :s", s=flipped)
    problem = first_problem(logged)
    assert (problem.tenant, problem.seq, problem.tamper) == (TENANT, LAST, Tamper.BAD_SIGNATURE)


def resign(attacker: Attacker, key: SigningKey) -> None:
    """Sign the chain's current entry at the checkpoint's seq with ``key``, as a forger would."""
    with attacker.engine.connect() as conn:
        seq, signed_at = conn.exec_driver_sql("SELECT seq, signed_at FROM audit_checkpoints").one()
    head = attacker.entry(seq).entry_hash
    signature = key.sign(checkpoint_message(TENANT, seq, head, signed_at, key.key_id))
    attacker.sql(
        "UPDATE audit_checkpoints SET head_hash = :h, key_id = :k, signature = :s",
        h=head,
        k=key.key_id,
        s=signature,
    )


async def test_a_checkpoint_signed_by_another_key_names_the_unknown_key(logged: Logged) -> None:
    other = fresh_key()
    resign(logged.attacker, other)
    report = logged.rt.verify_audit()
    assert report.problems == [
        Problem(
            TENANT,
            LAST,
            None,
            Tamper.BAD_SIGNATURE,
            f"checkpoint signed by unknown key {other.key_id}",
        )
    ]
    # A key the verifier is told to trust (a rotated one, say) is not unknown.
    assert logged.rt.verify_audit(extra_keys=[other.verify_key]).ok


async def test_a_rewritten_chain_re_signed_with_the_attackers_key_is_caught(
    logged: Logged,
) -> None:
    attacker = logged.attacker
    entry_id = logged.id_of(DENIED)
    forged = attacker.body(entry_id).replace('"5000.00"', '"50.00"')
    attacker.sql("UPDATE audit_payloads SET body = :b WHERE entry_id = :e", b=forged, e=entry_id)
    rewrite_from(attacker, DENIED)
    other = fresh_key()
    resign(attacker, other)
    report = logged.rt.verify_audit()
    assert report.problems == [
        Problem(
            TENANT,
            LAST,
            None,
            Tamper.BAD_SIGNATURE,
            f"checkpoint signed by unknown key {other.key_id}",
        )
    ]
    # The forgery is consistent: only the key that signed it gives it away.
    assert logged.rt.verify_audit(extra_keys=[other.verify_key]).ok


# -- tenants -----------------------------------------------------------------------------


async def test_each_tenant_has_its_own_chain_and_tampering_names_the_tenant(
    logged: Logged,
) -> None:
    env, rt, attacker = logged.env, logged.rt, logged.attacker
    run = await rt.start_run(env.spec(tenant="globex"))
    await run.call("lookup", {"order_id": "A-2"})
    await run.complete()
    globex = attacker.entries("globex")
    assert [(e.seq, e.kind) for e in globex] == [
        (1, "run.opened"),
        (2, "action.intent"),
        (3, "action.outcome"),
        (4, "run.state"),
    ]
    assert globex[0].prev_hash == GENESIS
    report = rt.verify_audit()
    assert report.ok, report.problems
    assert (report.checked, report.tenants, report.checkpoints) == (LAST + 4, 2, 2)

    # Same seq in both chains; only globex's entry 2 is touched.
    attacker.sql(
        "UPDATE audit_payloads SET body = :b WHERE entry_id = :e",
        b='{"kind":"action.intent"}',
        e=globex[1].entry_id,
    )
    report = rt.verify_audit()
    assert report.problems == [
        Problem("globex", 2, globex[1].entry_id, Tamper.MODIFIED, "its payload was changed")
    ]
    assert rt.verify_audit(tenant=TENANT).ok
    only = rt.verify_audit(tenant="globex")
    assert (only.ok, only.checked, only.tenants) == (False, 4, 1)


async def test_a_second_run_extends_the_tenants_chain_and_gets_its_own_checkpoint(
    logged: Logged,
) -> None:
    await governed_run(logged.env, logged.rt)
    entries = logged.attacker.entries()
    assert [e.kind for e in entries] == KINDS + KINDS
    assert entries[LAST].prev_hash == entries[LAST - 1].entry_hash
    report = logged.rt.verify_audit()
    assert report.ok, report.problems
    assert (report.checked, report.checkpoints) == (2 * LAST, 2)
