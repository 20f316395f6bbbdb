"""An insider with write access to the database but not the audit key.

Each test is one attack, carried out with plain SQL, then checked the way an auditor
checks: ``verify_store`` with only the deployment's real public key (pinned). The
signer's own guard is checked too: it must not sign what it has not verified.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from proctor import Runtime
from proctor.audit import Problem, Tamper, VerifyReport, verify_store
from proctor.audit.anchor import AnchorFile
from proctor.store.tables import audit_checkpoints, audit_refusals

from .conftest import LAST, TENANT, Attacker, Logged, governed_run
from .test_tampering import DENIED, delete_entry, rewrite_from


def pinned(logged: Logged, rt: Runtime | None = None, **options: object) -> VerifyReport:
    """Verify as an auditor does: the real public key only, nothing the store could add."""
    rt = rt or logged.rt
    with rt.store.read() as conn:
        return verify_store(conn, [logged.rt.key.verify_key], **options)  # type: ignore[arg-type]


def checkpoint_seqs(attacker: Attacker, tenant: str = TENANT) -> list[int]:
    with attacker.engine.connect() as conn:
        return [
            int(s)
            for (s,) in conn.execute(
                sa.select(audit_checkpoints.c.seq)
                .where(audit_checkpoints.c.tenant == tenant)
                .order_by(audit_checkpoints.c.seq)
            )
        ]


def refused(attacker: Attacker, tenant: str = TENANT) -> int:
    with attacker.engine.connect() as conn:
        found = conn.execute(
            sa.select(audit_refusals.c.refused).where(audit_refusals.c.tenant == tenant)
        ).scalar()
    return int(found or 0)


def forge_denial(logged: Logged) -> None:
    """Turn the denied 5000.00 refund into 50.00, recompute every hash, drop the checkpoints."""
    attacker = logged.attacker
    entry_id = logged.id_of(DENIED)
    forged = attacker.body(entry_id).replace('"5000.00"', '"50.00"')
    attacker.sql("UPDATE audit_payloads SET body = :b WHERE entry_id = :e", b=forged, e=entry_id)
    rewrite_from(attacker, DENIED)
    attacker.sql("DELETE FROM audit_checkpoints")


# -- the whole attack: rewrite, recompute, delete checkpoints, let the kernel sign --------


@pytest.mark.parametrize("signer", ["same process", "fresh process"])
async def test_a_rewritten_chain_is_not_signed_by_the_next_run_end(
    logged: Logged, signer: str, caplog: pytest.LogCaptureFixture
) -> None:
    forge_denial(logged)
    rt = logged.rt if signer == "same process" else logged.env.runtime()
    with caplog.at_level(logging.ERROR, logger="proctor.audit"):
        await governed_run(logged.env, rt)  # ends normally: the run's end is recorded
    # The signer refused: no checkpoint over the forged chain, loudly.
    assert checkpoint_seqs(logged.attacker) == []
    assert refused(logged.attacker) >= 1
    assert any("refused to sign" in r.getMessage() for r in caplog.records)
    kinds = [e.kind for e in logged.attacker.entries()]
    assert len(kinds) == 2 * LAST
    assert kinds[-1] == "run.state"
    report = pinned(logged)
    assert not report.ok
    assert any(
        p.tamper is Tamper.DELETED and "no signed checkpoint covers it" in p.detail
        for p in report.problems
    ), report.problems


async def test_a_signer_refuses_a_chain_rewritten_after_its_own_checkpoint(
    logged: Logged, caplog: pytest.LogCaptureFixture
) -> None:
    """The checkpoints stay; only entries after a verified head are rewritten."""
    await governed_run(logged.env, logged.rt)
    attacker = logged.attacker
    target = LAST + DENIED
    entry_id = attacker.entry(target).entry_id
    forged = attacker.body(entry_id).replace('"5000.00"', '"50.00"')
    attacker.sql("UPDATE audit_payloads SET body = :b WHERE entry_id = :e", b=forged, e=entry_id)
    rewrite_from(attacker, target)
    attacker.sql("DELETE FROM audit_checkpoints WHERE seq > :s", s=LAST)
    with caplog.at_level(logging.ERROR, logger="proctor.audit"):
        await governed_run(logged.env, logged.env.runtime())
    assert checkpoint_seqs(attacker) == [LAST]
    (line,) = [r.getMessage() for r in caplog.records if "refused to sign" in r.getMessage()]
    assert f"tenant {TENANT}" in line
    assert not pinned(logged).ok


# -- checkpoints removed, reordered, orphaned, inserted ----------------------------------


async def test_a_deleted_middle_checkpoint_is_named(logged: Logged) -> None:
    await governed_run(logged.env, logged.rt)
    await governed_run(logged.env, logged.rt)
    assert checkpoint_seqs(logged.attacker) == [LAST, 2 * LAST, 3 * LAST]
    logged.attacker.sql("DELETE FROM audit_checkpoints WHERE seq = :s", s=2 * LAST)
    report = pinned(logged)
    assert report.problems == [
        Problem(
            TENANT,
            3 * LAST,
            None,
            Tamper.DELETED,
            "checkpoint 2 is missing: checkpoint 3 follows checkpoint 1 (entry 14)",
        )
    ]


async def test_an_orphan_checkpoint_is_named_by_its_tenant(logged: Logged) -> None:
    with logged.attacker.engine.connect() as conn:
        row = conn.execute(sa.select(audit_checkpoints)).one()._asdict()
    logged.attacker.engine.dispose()
    with logged.attacker.engine.begin() as conn:
        conn.execute(audit_checkpoints.insert(), {**row, "tenant": "ghost"})
    report = pinned(logged)
    assert [(p.tenant, p.seq, p.tamper) for p in report.problems] == [
        ("ghost", LAST, Tamper.BAD_SIGNATURE)
    ]
    assert report.tenants == 2


async def test_a_garbage_checkpoint_row_is_named(logged: Logged) -> None:
    logged.attacker.sql(
        "INSERT INTO audit_checkpoints (tenant, seq, head_hash, signed_at, key_id, signature) "
        "VALUES (:t, 3, 'nothex', 'yesterday', 'k', 'zz')",
        t=TENANT,
    )
    report = pinned(logged)
    assert [(p.seq, p.tamper) for p in report.problems] == [(3, Tamper.BAD_SIGNATURE)]


# -- the anchor outside the database --------------------------------------------------------


async def test_a_truncated_tail_with_its_checkpoints_shows_against_the_anchor(
    logged: Logged, tmp_path: Path
) -> None:
    anchor = tmp_path / "anchor.jsonl"
    settings = logged.env.kit.settings.model_copy(update={"audit_anchor": anchor})
    rt = logged.env.runtime(settings=settings)
    await governed_run(logged.env, rt)
    assert len(AnchorFile(anchor).read().heads) == 1
    attacker = logged.attacker
    for seq in range(2 * LAST, LAST, -1):
        delete_entry(attacker, seq)
    attacker.sql("DELETE FROM audit_checkpoints WHERE seq > :s", s=LAST)
    kept = attacker.entry(LAST)
    attacker.sql(
        "UPDATE audit_heads SET seq = :s, head_hash = :h WHERE tenant = :t",
        s=LAST,
        h=kept.entry_hash,
        t=TENANT,
    )
    assert pinned(logged).ok  # the database alone cannot tell: it is a shorter, valid chain
    report = pinned(logged, anchor=AnchorFile(anchor).read())
    assert report.problems == [
        Problem(
            TENANT,
            2 * LAST,
            None,
            Tamper.DELETED,
            f"the chain ends at {LAST} but the anchor holds its signed head at {2 * LAST}: "
            "its tail was deleted",
        )
    ]


# -- a BLOB where the payload text was --------------------------------------------------


# Only SQLite lets a text column hold bytes: PostgreSQL refuses the tamper itself.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_payload_stored_as_bytes_is_named_not_a_crash(logged: Logged) -> None:
    entry_id = logged.id_of(DENIED)
    logged.attacker.sql(
        "UPDATE audit_payloads SET body = CAST(body AS BLOB) WHERE entry_id = :e", e=entry_id
    )
    report = pinned(logged)
    assert report.problems == [
        Problem(
            TENANT, DENIED, entry_id, Tamper.MODIFIED, "its payload is stored as bytes, not text"
        )
    ]


async def test_a_refusal_is_counted_in_the_services_metrics(logged: Logged) -> None:
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    from proctor.server.app import create_app

    async def refused_metric() -> dict[str, float]:
        transport = httpx.ASGITransport(app=create_app(logged.rt, public_metrics=True))
        async with httpx.AsyncClient(transport=transport, base_url="http://proctor.test") as c:
            text = (await c.get("/metrics")).text
        return {
            s.labels["tenant"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "proctor_audit_signatures_refused_total"
        }

    assert await refused_metric() == {TENANT: 0}
    forge_denial(logged)
    # Another worker (another process) ends a run over the forged chain.
    await governed_run(logged.env, logged.env.runtime())
    assert await refused_metric() == {TENANT: 1}


async def test_checkpoints_signed_before_linking_still_verify_and_are_linked_onto(
    logged: Logged,
) -> None:
    """A store from before schema 0009: its checkpoint signs the head only."""
    from proctor.audit.chain import checkpoint_message

    key = logged.rt.key
    with logged.attacker.engine.connect() as conn:
        seq, head, signed_at = conn.execute(
            sa.select(
                audit_checkpoints.c.seq,
                audit_checkpoints.c.head_hash,
                audit_checkpoints.c.signed_at,
            )
        ).one()
    older = key.sign(checkpoint_message(TENANT, int(seq), head, signed_at, key.key_id))
    logged.attacker.sql(
        "UPDATE audit_checkpoints SET number = NULL, prev_hash = NULL, signature = :s", s=older
    )
    assert pinned(logged).ok
    await governed_run(logged.env, logged.env.runtime())  # a process started after the upgrade
    with logged.attacker.engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit_checkpoints.c.seq, audit_checkpoints.c.number).order_by(
                audit_checkpoints.c.seq
            )
        ).all()
    assert [tuple(r) for r in rows] == [(LAST, None), (2 * LAST, 1)]
    report = pinned(logged)
    assert report.ok, report.problems
    # The link covers the older checkpoint: removing it is named.
    logged.attacker.sql("DELETE FROM audit_checkpoints WHERE seq = :s", s=LAST)
    (problem,) = pinned(logged).problems
    assert (problem.seq, problem.tamper) == (2 * LAST, Tamper.DELETED)


async def test_a_fresh_signer_refuses_a_database_behind_its_anchor(
    logged: Logged, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    anchor = tmp_path / "anchor.jsonl"
    settings = logged.env.kit.settings.model_copy(update={"audit_anchor": anchor})
    await governed_run(logged.env, logged.env.runtime(settings=settings))
    attacker = logged.attacker
    for seq in range(2 * LAST, LAST, -1):
        delete_entry(attacker, seq)
    attacker.sql("DELETE FROM audit_checkpoints WHERE seq > :s", s=LAST)
    kept = attacker.entry(LAST).entry_hash
    attacker.sql("UPDATE audit_heads SET seq = :s, head_hash = :h", s=LAST, h=kept)
    with caplog.at_level(logging.ERROR, logger="proctor.audit"):
        await governed_run(logged.env, logged.env.runtime(settings=settings))
    assert checkpoint_seqs(attacker) == [LAST]
    (line,) = [r.getMessage() for r in caplog.records if "refused to sign" in r.getMessage()]
    assert f"the anchor holds a checkpoint at entry {2 * LAST}" in line
    assert refused(attacker) == 1
