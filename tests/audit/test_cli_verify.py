"""``proctor audit verify`` as an auditor runs it: on a copy, read-only, with the real key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
)

from proctor.audit import Checkpoint, SigningKey
from proctor.store import Store
from tests.cli.conftest import Cli

ENTRIES = 14


def demo(cli: Cli) -> None:
    result = cli("demo", "--walkthrough")
    assert result.exit_code == 0, result.output


def real_key(cli: Cli) -> Path:
    pem = cli.home.parent / "real.pem"
    pem.write_text(SigningKey.load(cli.home / "audit-key.pem").verify_key.pem())
    return pem


def checkpoints(cli: Cli) -> list[Checkpoint]:
    with sqlite3.connect(cli.db) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT * FROM audit_checkpoints ORDER BY seq").fetchall()
    return [Checkpoint.from_json(dict(r)) for r in rows]


def test_the_public_key_pins_who_may_have_signed(cli: Cli) -> None:
    demo(cli)
    pem = real_key(cli)
    # Someone who can write the database and the files beside it swaps in a key of
    # their own and re-signs the checkpoint with it.
    forger = SigningKey(Ed25519PrivateKey.generate())
    (cp,) = checkpoints(cli)
    forged = Checkpoint(
        cp.tenant, cp.seq, cp.head_hash, cp.signed_at, forger.key_id, "", cp.number, cp.prev_hash
    )
    cli.sql(
        "UPDATE audit_checkpoints SET key_id = ?, signature = ?",
        forger.key_id,
        forger.sign(forged.message()),
    )
    (cli.home / "audit-key.pem").write_bytes(
        forger.private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    assert cli("audit", "verify").exit_code == 0  # the key beside the store proves nothing
    pinned = cli("audit", "verify", "--public-key", str(pem))
    assert pinned.exit_code == 1
    assert pinned.stderr.splitlines()[0] == (
        f"TAMPERED: tenant demo, entry {ENTRIES}: bad signature: checkpoint signed by unknown "
        f"key {forger.key_id}"
    )


def test_verify_generates_no_key_and_needs_one(cli: Cli) -> None:
    demo(cli)
    pem = real_key(cli)
    (cli.home / "audit-key.pem").unlink()
    missing = cli("audit", "verify")
    assert missing.exit_code == 2
    assert "no audit key at" in missing.stderr
    assert not (cli.home / "audit-key.pem").exists()
    result = cli("audit", "verify", "--public-key", str(pem))
    assert result.exit_code == 0, result.output
    assert not (cli.home / "audit-key.pem").exists()


def test_verify_migrates_nothing(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    demo(cli)
    pem = real_key(cli)
    old = cli.home.parent / "old.db"
    store = Store(f"sqlite:///{old}", migrate=False)
    with store.engine.begin() as conn:
        cfg = store._alembic_config(conn)
        command.upgrade(cfg, "0008")
    store.close()
    monkeypatch.setenv("PROCTOR_DB_URL", f"sqlite:///{old}")
    result = cli("audit", "verify", "--public-key", str(pem))
    assert result.exit_code == 0, result.output
    assert "verified 0 entries in 0 chain(s)" in result.stdout
    engine = sa.create_engine(f"sqlite:///{old}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0008"
    engine.dispose()
    monkeypatch.setenv("PROCTOR_DB_URL", f"sqlite:///{cli.home.parent / 'none.db'}")
    absent = cli("audit", "verify", "--public-key", str(pem))
    assert absent.exit_code == 2
    assert "no store at" in absent.stderr
    assert not (cli.home.parent / "none.db").exists()


def test_verify_with_an_anchor_catches_a_tail_cut_with_its_checkpoints(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    anchor = cli.home.parent / "anchor.jsonl"
    monkeypatch.setenv("PROCTOR_AUDIT_ANCHOR", str(anchor))
    demo(cli)
    demo(cli)
    assert len(anchor.read_text().splitlines()) == 2
    ok = cli("audit", "verify", "--anchor", str(anchor))
    assert ok.exit_code == 0, ok.output
    assert f"The database extends all 2 head(s) anchored in {anchor}." in ok.stdout
    # Cut the second run off, with its checkpoint, and move the head back.
    cli.sql(
        "DELETE FROM audit_payloads WHERE entry_id IN "
        "(SELECT entry_id FROM audit_entries WHERE seq > ?)",
        ENTRIES,
    )
    cli.sql("DELETE FROM audit_entries WHERE seq > ?", ENTRIES)
    cli.sql("DELETE FROM audit_checkpoints WHERE seq > ?", ENTRIES)
    ((head,),) = cli.sql("SELECT entry_hash FROM audit_entries WHERE seq = ?", ENTRIES)
    cli.sql("UPDATE audit_heads SET seq = ?, head_hash = ?", ENTRIES, head)
    monkeypatch.delenv("PROCTOR_AUDIT_ANCHOR")
    assert cli("audit", "verify").exit_code == 0  # alone, the database is a valid shorter chain
    result = cli("audit", "verify", "--anchor", str(anchor))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"TAMPERED: tenant demo, entry {2 * ENTRIES}: deleted: the chain ends at {ENTRIES} but "
        f"the anchor holds its signed head at {2 * ENTRIES}: its tail was deleted"
    )
    missing = cli("audit", "verify", "--anchor", str(cli.home.parent / "nope.jsonl"))
    assert missing.exit_code == 2
