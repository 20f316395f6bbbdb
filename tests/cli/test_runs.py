"""``proctor runs list|show|resume``."""

from __future__ import annotations

import re

from .conftest import RUN_ID, Cli


def demo(cli: Cli) -> str:
    result = cli("demo", "--walkthrough")
    assert result.exit_code == 0, result.output
    (run_id,) = set(RUN_ID.findall(result.stdout))
    return run_id


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


def test_list_with_no_runs(cli: Cli) -> None:
    result = cli("runs", "list")
    assert result.exit_code == 0
    assert result.stdout == "No runs.\n"


def test_list_shows_the_demo_run(cli: Cli) -> None:
    run_id = demo(cli)
    result = cli("runs", "list")
    assert result.exit_code == 0, result.output
    (row,) = [cells(line) for line in result.stdout.splitlines() if run_id.startswith(line[:12])]
    assert run_id.startswith(row[0])
    assert row[1:6] == ["completed", "done", "demo", "refunds", "3"]
    assert run_id[:12] in cli("runs", "list", "--state", "completed", "--tenant", "demo").stdout
    assert cli("runs", "list", "--state", "running").stdout == "No runs.\n"
    assert cli("runs", "list", "--tenant", "other").stdout == "No runs.\n"


def test_list_rejects_an_unknown_state(cli: Cli) -> None:
    result = cli("runs", "list", "--state", "sleeping")
    assert result.exit_code == 2
    assert "sleeping" in result.output


def test_list_is_newest_first_and_limited(cli: Cli) -> None:
    first = demo(cli)
    second = demo(cli)
    listed = [cells(line)[0] for line in cli("runs", "list").stdout.splitlines()[2:]]
    assert len(listed) == 2
    assert second.startswith(listed[0])
    assert first.startswith(listed[1])
    limited = cli("runs", "list", "--limit", "1").stdout.splitlines()[2:]
    assert [cells(line)[0] for line in limited] == listed[:1]


def test_show_lists_each_step_and_what_became_of_it(cli: Cli) -> None:
    run_id = demo(cli)
    result = cli("runs", "show", run_id)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{run_id} completed done (tenant demo, policy support-v1@")
    rows = [cells(line) for line in lines[4:]]
    held = "safe-mode-needs-supervisor, tainted-run-needs-supervisor, refund-needs-supervisor"
    assert rows == [
        ["0", "issue_refund", "allow", "succeeded", "refund-small"],
        ["1", "lookup_order", "allow", "succeeded", "support-reads"],
        ["2", "issue_refund", "deny", "denied", "refund-over-limit, refund-over-remaining"],
        ["3", "issue_refund", "require_approval", "succeeded", held],
    ]


def test_show_an_unknown_run(cli: Cli) -> None:
    result = cli("runs", "show", "run_nope")
    assert result.exit_code == 4
    assert result.stderr == "error: no run run_nope; `proctor runs list` shows the runs\n"


def test_resume_a_completed_run_is_refused_with_exit_4(cli: Cli) -> None:
    run_id = demo(cli)
    result = cli("runs", "resume", run_id, "--app", "tests.cli.shop:app")
    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr == (
        f"error: run {run_id} already ended completed (done); a terminal run never runs again\n"
    )


def test_resume_needs_the_app(cli: Cli) -> None:
    run_id = demo(cli)
    result = cli("runs", "resume", run_id)
    assert result.exit_code == 2
    assert "pass --app MODULE:APP or set PROCTOR_APP" in result.output


def test_resume_with_an_app_that_does_not_import(cli: Cli) -> None:
    run_id = demo(cli)
    result = cli("runs", "resume", run_id, "--app", "no_such_module:app")
    assert result.exit_code == 2
    assert "cannot import 'no_such_module' for app 'no_such_module:app'" in result.stderr


def test_recover_releases_the_runs_of_dead_workers(cli: Cli) -> None:
    import asyncio
    import time

    from proctor import RunSpec, Runtime, Settings

    from .conftest import SHOP_BUNDLE

    settings = Settings(home=cli.home, db_url=f"sqlite:///{cli.db}", lease_s=0.2)
    rt = Runtime(policy=SHOP_BUNDLE, settings=settings, telemetry=None)
    spec = RunSpec(agent="bot", role="support_agent", tenant="t", workflow="w", requester="r")
    run = asyncio.run(rt.start_run(spec))  # and its worker dies here
    rt.close()

    time.sleep(0.3)  # its lease lapses
    result = cli("runs", "recover")
    assert result.exit_code == 0, result.output
    assert f"Run {run.id}: its worker's lease lapsed; ready for another worker." in result.stdout
    assert "1 run(s) released, 0 model-spend reservation(s) released." in result.stdout
    assert cli.sql("SELECT owner, lease_generation FROM runs") == [(None, 2)]
    assert "0 run(s) released" in cli("runs", "recover").stdout
