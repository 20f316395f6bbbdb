"""The bundle signs only what the audit chain backs: tables changed behind its back, a
chain rewritten, and the anchor's heads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proctor.evidence.format import EvidenceError
from proctor.evidence.verify import verify_evidence
from tests.audit.conftest import LAST, Attacker, governed_run
from tests.audit.test_insider import forge_denial
from tests.audit.test_tampering import DENIED
from tests.cli.conftest import Cli
from tests.shop import Env

from .conftest import SINCE, UNTIL, Exported, manifest_of, read_zip, resigned


def approvals_of(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in read_zip(path)["approvals.jsonl"].splitlines()]


async def test_an_approver_renamed_in_the_table_is_not_signed(exported: Exported) -> None:
    attacker = Attacker(exported.env.db_url)
    attacker.sql("UPDATE approvals SET decided_by = 'mallory', decision_reason = 'fine'")
    attacker.close()
    out = exported.env.tmp / "renamed.zip"
    from proctor.evidence.export import export_evidence

    summary = export_evidence(exported.rt, out, since=SINCE, until=UNTIL)
    (approval,) = approvals_of(out)
    assert (approval["decided_by"], approval["decision_reason"]) == ("sam", "checked the photos")
    assert sorted(d.field for d in summary.discrepancies) == ["decided_by", "decision_reason"]
    assert "mallory" not in read_zip(out)["approvals.jsonl"].decode()
    assert any("mallory" in d for d in manifest_of(read_zip(out))["discrepancies"])
    assert b"Not backed by the audit chain" in read_zip(out)["index.html"]
    assert verify_evidence(out, exported.rt.key.verify_key).ok


async def test_runs_and_approvals_name_the_entries_that_back_them(exported: Exported) -> None:
    (approval,) = approvals_of(exported.path)
    assert approval["backed_by"] == [8, 10]
    assert approval["unbacked"] == []
    (run,) = [json.loads(line) for line in exported.files()["runs.jsonl"].splitlines()]
    assert run["backed_by"] == [1, LAST]


async def test_a_line_the_chain_does_not_back_fails_offline_even_when_signed(
    exported: Exported,
) -> None:
    """Whoever holds the key signs what they like; the bundle still re-derives its lines."""

    def rename(files: dict[str, bytes]) -> dict[str, bytes]:
        changed = {**files, "approvals.jsonl": files["approvals.jsonl"].replace(b"sam", b"eve")}
        return resigned(changed, exported.rt.key)

    report = verify_evidence(exported.tampered(rename), exported.rt.key.verify_key)
    assert [(f.file, f.kind) for f in report.failures] == [("approvals.jsonl", "unbacked")]
    assert "decided_by is 'eve' but the audit chain says 'sam'" in report.failures[0].detail


async def test_a_rewritten_chain_is_not_exported(env: Env) -> None:
    from tests.audit.conftest import Logged

    rt = env.runtime()
    run_id = await governed_run(env, rt)
    attacker = Attacker(env.db_url)
    try:
        forge_denial(Logged(env, rt, run_id, attacker))
        await governed_run(env, env.runtime())  # the signer refuses this run's end
        from proctor.evidence.export import export_evidence

        with pytest.raises(EvidenceError, match="refused to sign its head"):
            export_evidence(rt, env.tmp / "forged.zip", since=SINCE, until=UNTIL)
        assert not (env.tmp / "forged.zip").exists()
        assert attacker.entry(DENIED).kind == "action.denied"
    finally:
        attacker.close()


async def test_the_anchored_heads_travel_with_the_bundle(env: Env) -> None:
    anchor = env.tmp / "anchor.jsonl"
    rt = env.runtime(settings=env.kit.settings.model_copy(update={"audit_anchor": anchor}))
    await governed_run(env, rt)
    await governed_run(env, rt)
    out = env.tmp / "anchored.zip"
    from proctor.evidence.export import export_evidence

    export_evidence(rt, out, since=SINCE, until=UNTIL)
    chain = manifest_of(read_zip(out))["chains"]["acme"]
    assert [a["seq"] for a in chain["anchored"]] == [LAST, 2 * LAST]
    assert [c["number"] for c in chain["checkpoints"]] == [1, 2]
    report = verify_evidence(out, rt.key.verify_key)
    assert report.ok, report.failures
    # Cut the second run off in the database: the export refuses, naming the anchor.
    attacker = Attacker(env.db_url)
    try:
        for seq in range(2 * LAST, LAST, -1):
            entry_id = attacker.entry(seq).entry_id
            attacker.sql("DELETE FROM audit_payloads WHERE entry_id = :e", e=entry_id)
            attacker.sql("DELETE FROM audit_entries WHERE seq = :s", s=seq)
        attacker.sql("DELETE FROM audit_checkpoints WHERE seq > :s", s=LAST)
        attacker.sql(
            "UPDATE audit_heads SET seq = :s, head_hash = :h",
            s=LAST,
            h=attacker.entry(LAST).entry_hash,
        )
    finally:
        attacker.close()
    with pytest.raises(EvidenceError, match="anchored at entry 28"):
        export_evidence(rt, env.tmp / "cut.zip", since=SINCE, until=UNTIL)


def test_the_export_command_warns_and_exits_1_when_a_table_disagrees(cli: Cli) -> None:
    assert cli("demo", "--walkthrough").exit_code == 0
    cli.sql("UPDATE approvals SET decided_by = 'mallory'")
    out = cli.home.parent / "ev.zip"
    result = cli("evidence", "export", "--since", "2020-01-01", "--out", str(out))
    assert result.exit_code == 1, result.output
    assert "not backed by the audit chain" in result.stderr
    assert "decided_by is 'mallory' in the table but 'sam' in the audit chain" in result.stderr
    assert out.exists()
    assert b"mallory" not in read_zip(out)["approvals.jsonl"]
    assert cli("evidence", "verify", str(out)).exit_code == 0
