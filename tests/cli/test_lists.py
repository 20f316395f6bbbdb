"""Lists a person reads at 80 columns, ids they can type, and JSON for scripts: short ids
(a unique start of an id works wherever the id does), ``--json`` on every list and show
command, and no flag that reads as if it took a value."""

from __future__ import annotations

import json

import pytest
import typer

from proctor.cli.main import app
from proctor.cli.reference import walk

from .conftest import APPROVAL_ID, RUN_ID, Cli


def every_command() -> list[tuple[tuple[str, ...], object]]:
    return [(path, cmd) for path, cmd, _ in walk(typer.main.get_command(app), ("proctor",))]


def test_lists_fit_80_columns_with_ids_that_work(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    for amount in ("400.00", "450.00", "500.00"):
        cli.pending_refund(amount)
    assert cli("tokens", "create", "--name", "sam", "--role", "approver").exit_code == 0
    monkeypatch.setenv("COLUMNS", "80")
    shown: dict[str, str] = {}
    for args in (("runs", "list"), ("approvals", "list"), ("tokens", "list")):
        result = cli(*args)
        assert result.exit_code == 0, result.output
        lines = result.stdout.splitlines()
        assert all(len(line) <= 80 for line in lines), result.stdout
        assert "…" not in result.stdout, result.stdout  # nothing cut short
        shown[args[0]] = result.stdout
    runs = [line.split()[0] for line in shown["runs"].splitlines()[2:]]
    requests = [line.split()[0] for line in shown["approvals"].splitlines()[2:]]
    assert len(runs) == len(requests) == 3
    assert all(len(r) < 24 for r in runs + requests)
    # The short forms are the ids' starts, and commands take them as they take ids.
    detail = cli("runs", "show", runs[0])
    assert detail.exit_code == 0, detail.output
    (full_run,) = set(RUN_ID.findall(detail.stdout))
    assert full_run.startswith(runs[0])
    approved = cli(
        "approvals", "approve", requests[-1], "--as", "sam", "--role", "supervisor",
        "--reason", "checked",
    )  # fmt: skip
    assert approved.exit_code == 0, approved.output
    (full_request,) = set(APPROVAL_ID.findall(approved.stdout))
    assert full_request.startswith(requests[-1])
    # The hex part alone is enough too.
    assert cli("runs", "show", runs[1].removeprefix("run_")).exit_code == 0


def test_an_id_start_several_ids_share_is_refused_with_them(cli: Cli) -> None:
    first, _ = cli.pending_refund("400.00")
    second, _ = cli.pending_refund("450.00")
    common = next(i for i in range(len(first)) if first[i] != second[i])
    result = cli("runs", "show", first[:common])
    assert result.exit_code == 2
    assert "more than one run's id" in result.stderr
    assert first in result.stderr
    assert second in result.stderr
    missing = cli("runs", "show", "run_ffffffff")
    assert missing.exit_code != 0
    assert "no run run_ffffffff; `proctor runs list` shows the runs" in missing.stderr


def test_every_list_and_show_command_prints_json(cli: Cli) -> None:
    run_id, approval_id = cli.pending_refund()
    listing = [p for p, _ in every_command() if p[-1] in ("list", "show")]
    assert {p[1] for p in listing} >= {"runs", "approvals", "tokens", "eval"}
    for path, command in every_command():
        if path[-1] in ("list", "show"):
            names = {o for p in command.params for o in getattr(p, "opts", [])}  # type: ignore[attr-defined]
            assert "--json" in names, f"{' '.join(path)} has no --json"
    runs = json.loads(cli("runs", "list", "--json").stdout)
    assert [r["id"] for r in runs] == [run_id]
    shown = json.loads(cli("runs", "show", run_id[:14], "--json").stdout)
    assert (shown["id"], shown["steps"][0]["approval_id"]) == (run_id, approval_id)
    requests = json.loads(cli("approvals", "list", "--json").stdout)
    assert [(r["id"], r["run_id"], r["roles"]) for r in requests] == [
        (approval_id, run_id, ["supervisor"])
    ]
    assert json.loads(cli("tokens", "list", "--json").stdout) == []


def test_no_flag_shows_a_value_placeholder(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    for path, _ in every_command():
        result = cli(*path[1:], "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "<bool>" not in result.stdout, " ".join(path)
    assert "<int>" in cli("run", "--help").stdout  # options that take a value still say so
