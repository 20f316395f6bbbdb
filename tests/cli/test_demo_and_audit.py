"""``proctor demo`` then ``proctor audit verify``, before and after someone edits the database."""

from __future__ import annotations

import io
import itertools
import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from rich.console import Console

from proctor.audit import SigningKey
from proctor.audit.chain import checkpoint_message
from proctor.examples.support import SCENARIOS

from .conftest import RUN_ID, Cli

ENTRIES = 14  # what the walkthrough writes to the demo tenant's chain (its denial adds safe mode)


def next_steps(output: str) -> list[str]:
    """The commands under "Next, try:", one a line."""
    after = output.split("Next, try:\n", 1)[1]
    return [line[2:] for line in after.splitlines() if line.startswith("  ")]


def as_shell_reads(line: str) -> list[str]:
    """The words bash hands a command when ``line`` is pasted into it."""
    script = (
        'proctor() { printf "%s\\0" proctor "$@"; }; open() { printf "%s\\0" open "$@"; }; ' + line
    )
    done = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, check=True, timeout=10
    )
    return done.stdout.split("\0")[:-1]


def bank_scenarios() -> list[dict[str, Any]]:
    return [
        scenario
        for path in sorted(SCENARIOS.glob("*.yaml"))
        for scenario in yaml.safe_load(path.read_text())["scenarios"]
    ]


def test_next_steps_survive_a_shell_and_a_narrow_terminal() -> None:
    from proctor.cli.demo import _next_steps

    terminal = Console(width=40, file=io.StringIO(), color_system=None)
    request = 'Refund $520 on order A-1002, it\'s `broken` \\ "really"'
    where = Path("reports with spaces/latest.json").absolute()
    _next_steps(["proctor", "run", "--app", "my.app:app", request], ["open", where], out=terminal)
    lines = next_steps(terminal.file.getvalue())  # type: ignore[attr-defined]
    assert len(lines) == 2  # neither wrapped though both are wider than the terminal
    assert as_shell_reads(lines[0]) == ["proctor", "run", "--app", "my.app:app", request]
    assert as_shell_reads(lines[1]) == ["open", str(where)]


def demo(cli: Cli) -> str:
    result = cli("demo", "--walkthrough")
    assert result.exit_code == 0, result.output
    (run_id,) = set(RUN_ID.findall(result.stdout))
    return run_id


def test_demo_runs_the_walkthrough_and_verifies_its_log(cli: Cli) -> None:
    result = cli("demo", "--walkthrough")
    assert result.exit_code == 0, result.output
    out = result.stdout
    (run_id,) = set(RUN_ID.findall(out))
    assert f"Run {run_id}" in out
    (show,) = [line for line in next_steps(out) if line.startswith("proctor runs show ")]
    assert run_id.startswith(show.split()[-1])  # its short id
    assert f"Store: sqlite:///{cli.db}" in out
    for label, outcome in [
        ("look up the order", "executed"),
        ("refund $20 (within the agent's limit)", "executed"),
        ("refund $5,000 (more than the order)", "denied"),
        ("refund $400 (needs a supervisor)", "awaiting_approval"),
        ("approved by sam (supervisor), then resumed", "executed"),
    ]:
        (row,) = [line for line in out.splitlines() if label in line]
        assert outcome in row
    assert "Run ended completed." in out
    assert f"Audit log verified: {ENTRIES} entries, 1 signed checkpoint(s)." in out
    assert cli.walkthrough_refunds() == [
        (f"{run_id}/0", "A-1002", "20.00"),
        (f"{run_id}/3", "A-1002", "400.00"),
    ]


def test_audit_verify_counts_the_entries_of_an_untouched_log(cli: Cli) -> None:
    demo(cli)
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"OK: verified {ENTRIES} entries in 1 chain(s), 1 signed checkpoint(s).\n"
    )
    assert cli("audit", "verify", "--tenant", "demo").exit_code == 0
    other = cli("audit", "verify", "--tenant", "nobody")
    assert other.exit_code == 0
    assert "verified 0 entries in 0 chain(s)" in other.stdout


def test_a_second_demo_extends_the_chain(cli: Cli) -> None:
    demo(cli)
    demo(cli)
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert f"verified {2 * ENTRIES} entries in 1 chain(s), 2 signed checkpoint(s)." in result.stdout


def test_the_first_command_generates_the_audit_key_and_says_so(
    cli: Cli, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="proctor"):
        demo(cli)
        assert cli("audit", "verify").exit_code == 0
    generated = [
        r.getMessage() for r in caplog.records if "generated a new audit" in r.getMessage()
    ]
    assert generated == [
        f"generated a new audit signing key at {cli.home / 'audit-key.pem'}: checkpoints are "
        "signed with it. Keep it safe and set PROCTOR_AUDIT_KEY_FILE to a managed key in "
        "production."
    ]


def entry_id(cli: Cli, seq: int) -> str:
    ((found,),) = cli.sql(
        "SELECT entry_id FROM audit_entries WHERE tenant = 'demo' AND seq = ?", seq
    )
    return str(found)


def test_audit_verify_names_a_modified_payload_and_exits_1(cli: Cli) -> None:
    demo(cli)
    denied = entry_id(cli, 6)
    ((kind,),) = cli.sql("SELECT kind FROM audit_entries WHERE entry_id = ?", denied)
    assert kind == "action.denied"
    cli.sql(
        "UPDATE audit_payloads SET body = replace(body, '5000.00', '50.00') WHERE entry_id = ?",
        denied,
    )
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"TAMPERED: tenant demo, entry 6 ({denied}): modified: its payload was changed\n"
        f"Checked {ENTRIES} entries; 1 problem(s).\n"
    )


def test_audit_verify_names_a_deleted_entry_and_exits_1(cli: Cli) -> None:
    demo(cli)
    gone, after = entry_id(cli, 4), entry_id(cli, 5)
    cli.sql("DELETE FROM audit_payloads WHERE entry_id = ?", gone)
    cli.sql("DELETE FROM audit_entries WHERE entry_id = ?", gone)
    result = cli("audit", "verify")
    assert result.exit_code == 1
    first = result.stderr.splitlines()[0]
    assert first == (
        f"TAMPERED: tenant demo, entry 5 ({after}): deleted: the entry before it is missing "
        "(expected entry 4)"
    )
    assert result.stderr.splitlines()[-1].startswith(f"Checked {ENTRIES - 1} entries; ")


def resign(cli: Cli, key: SigningKey) -> None:
    ((seq, head, signed_at),) = cli.sql("SELECT seq, head_hash, signed_at FROM audit_checkpoints")
    message = checkpoint_message("demo", int(seq), str(head), str(signed_at), key.key_id)
    cli.sql("UPDATE audit_checkpoints SET key_id = ?, signature = ?", key.key_id, key.sign(message))


def test_a_checkpoint_by_another_key_fails_until_its_public_key_is_given(cli: Cli) -> None:
    demo(cli)
    other = SigningKey(Ed25519PrivateKey.generate())
    resign(cli, other)
    result = cli("audit", "verify")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"TAMPERED: tenant demo, entry {ENTRIES}: bad signature: checkpoint signed by unknown "
        f"key {other.key_id}"
    )
    pem = cli.home.parent / "rotated.pem"
    pem.write_text(other.verify_key.pem())
    trusted = cli("audit", "verify", "--public-key", str(pem))
    assert trusted.exit_code == 0, trusted.output
    assert f"verified {ENTRIES} entries" in trusted.stdout


def test_audit_public_key_prints_the_key_that_verifies_the_log(cli: Cli) -> None:
    demo(cli)
    result = cli("audit", "public-key")
    assert result.exit_code == 0
    key = SigningKey.load(cli.home / "audit-key.pem")
    assert result.stdout == key.verify_key.pem()
    assert result.stdout.startswith("-----BEGIN PUBLIC KEY-----\n")


def test_a_public_key_that_is_not_pem_is_a_config_error(cli: Cli) -> None:
    demo(cli)
    bad = cli.home.parent / "bad.pem"
    bad.write_text("not a key")
    result = cli("audit", "verify", "--public-key", str(bad))
    assert result.exit_code == 2
    assert f"error: {bad} is not a PEM public key" in result.stderr


def test_a_missing_public_key_file_is_a_config_error_not_tampering(cli: Cli) -> None:
    demo(cli)
    result = cli("audit", "verify", "--public-key", str(cli.home.parent / "missing.pem"))
    assert result.exit_code == 2
    assert "missing.pem" in result.stderr


@pytest.mark.slow
def test_the_main_job_runs_the_support_bank_and_writes_its_reports(cli: Cli) -> None:
    import json

    result = cli("demo")
    assert result.exit_code == 0, result.output
    latest = cli.home / "reports" / "latest.json"
    summary = json.loads(latest.read_text())["summary"]
    assert summary["runs"] >= 60
    assert summary["incidents"]["unauthorized_executed"] == 0
    assert set(summary["cost_per_run_usd"]) >= {"mean", "p95"}
    assert set(summary["duration_s"]) >= {"p50", "p95"}
    assert (cli.home / "reports" / "latest" / "report.html").exists()
    assert "Audit log: verified" in result.stdout
    # What it says to try next works pasted into a shell: each file it names exists, and
    # the request reaches proctor as the bank wrote it.
    commands = [as_shell_reads(line) for line in next_steps(result.stdout)]
    assert commands[0][0] == "open"
    for argv in commands:
        for flag, value in itertools.pairwise(argv):
            if flag in ("open", "show", "matrix", "--baseline"):
                assert Path(value).exists(), argv
    run = next(argv for argv in commands if argv[:2] == ["proctor", "run"])
    requests = {s["request"] for s in bank_scenarios()}
    assert run[2] in requests


@pytest.mark.slow
def test_the_demo_report_is_deterministic_for_a_seed(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    def summary_without_timings(home: Path) -> dict[str, object]:
        monkeypatch.setenv("PROCTOR_HOME", str(home))
        monkeypatch.setenv("PROCTOR_DB_URL", f"sqlite:///{home / 'proctor.db'}")
        assert cli("demo", "--seed", "7").exit_code == 0
        report = json.loads((home / "reports" / "latest.json").read_text())
        summary = report["summary"]
        summary.pop("duration_s")
        results = [
            {k: v for k, v in r.items() if k not in ("run_id", "duration_s")}
            for r in report["results"]
        ]
        return {"summary": summary, "results": results}

    assert summary_without_timings(tmp_path / "a") == summary_without_timings(tmp_path / "b")
