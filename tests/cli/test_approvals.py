"""``proctor approvals``: the queue, and deciding a request as the right person, once."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import Result

from .conftest import Cli

APP = ("--app", "tests.cli.shop:app")


def approve(
    cli: Cli, approval_id: str, name: str = "sam", role: str = "supervisor", *app: str
) -> Result:
    return cli(
        "approvals", "approve", approval_id, "--as", name, "--role", role, "--reason", "ok", *app
    )


def row_of(output: str, needle: str) -> list[str]:
    """The cells of the one row that shows ``needle``: an id by its short form, or a value."""
    rows = [re.split(r"\s{2,}", line.strip()) for line in output.splitlines() if line.strip()]
    (cells,) = [
        cells
        for cells in rows
        if needle in cells or (len(cells[0]) >= 12 and needle.startswith(cells[0]))
    ]
    return cells


def test_an_empty_queue(cli: Cli) -> None:
    result = cli("approvals", "list")
    assert result.exit_code == 0
    assert result.stdout == "No approval requests.\n"


def test_list_shows_the_pending_request(cli: Cli) -> None:
    run_id, approval_id = cli.pending_refund()
    result = cli("approvals", "list")
    assert result.exit_code == 0, result.output
    cells = row_of(result.stdout, approval_id)
    assert approval_id.startswith(cells[0])
    assert run_id.startswith(cells[3].removesuffix("/0"))
    assert cells[1:3] + cells[4:6] == ["issue_refund", "supervisor", "demo", "pending"]


def test_approve_with_the_app_runs_the_call_once(cli: Cli) -> None:
    run_id, approval_id = cli.pending_refund()
    result = approve(cli, approval_id, "sam", "supervisor", *APP)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"{approval_id} approved by sam (supervisor).\n"
        f"Run {run_id} resumed: step 0 (issue_refund) executed.\n"
    )
    assert cli.refunds() == [(f"{run_id}/0", "A-1001", "400.00")]

    shown = cli("runs", "show", run_id)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0].startswith(f"{run_id} running")
    assert row_of(shown.stdout, "issue_refund") == [
        "0",
        "issue_refund",
        "require_approval",
        "succeeded",
        "refund-needs-supervisor",
    ]
    assert cli("approvals", "list").stdout == "No approval requests.\n"
    decided = cli("approvals", "list", "--all")
    assert row_of(decided.stdout, approval_id)[5] == "approved by sam"
    assert cli("audit", "verify").exit_code == 0


def test_approve_without_the_app_leaves_the_run_to_a_worker(cli: Cli) -> None:
    run_id, approval_id = cli.pending_refund()
    result = approve(cli, approval_id)
    assert result.exit_code == 0, result.output
    assert f"Run {run_id} is ready to resume" in result.stdout
    assert f"proctor runs resume {run_id} --app MODULE:APP" in result.stdout
    assert cli.refunds() == []

    resumed = cli("runs", "resume", run_id, *APP)
    assert resumed.exit_code == 0, resumed.output
    assert resumed.stdout == f"Run {run_id} is running.\nStep 0 (issue_refund): executed.\n"
    assert cli.refunds() == [(f"{run_id}/0", "A-1001", "400.00")]


def test_deny_never_runs_the_call(cli: Cli) -> None:
    run_id, approval_id = cli.pending_refund()
    result = cli(
        "approvals", "deny", approval_id, "--as", "sam", "--role", "supervisor",
        "--reason", "not eligible", *APP,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == f"{approval_id} denied by sam (supervisor)."
    assert cli.refunds() == []
    shown = cli("runs", "show", run_id)
    assert row_of(shown.stdout, "issue_refund")[3] == "approval_denied"


@pytest.mark.parametrize(
    ("name", "role", "message"),
    [
        ("sam", "support_agent", "needs the role supervisor; sam acts as support_agent"),
        ("customer:c-42", "supervisor", "nobody approves their own request"),
        ("support-bot", "supervisor", "an agent never approves"),
    ],
)
def test_only_the_named_role_approves_and_never_the_requester_or_agent(
    cli: Cli, name: str, role: str, message: str
) -> None:
    _, approval_id = cli.pending_refund()
    result = approve(cli, approval_id, name, role, *APP)
    assert result.exit_code == 3
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert cli.refunds() == []
    assert row_of(cli("approvals", "list").stdout, approval_id)[5] == "pending"


def test_approving_twice_is_refused(cli: Cli) -> None:
    _, approval_id = cli.pending_refund()
    assert approve(cli, approval_id, "sam", "supervisor", *APP).exit_code == 0
    again = approve(cli, approval_id, "kim", "supervisor", *APP)
    assert again.exit_code == 3
    assert again.stderr == f"error: approval {approval_id} was already approved by sam\n"
    assert len(cli.refunds()) == 1


def test_an_unknown_request_is_an_approval_error(cli: Cli) -> None:
    result = approve(cli, "apr_nope")
    assert result.exit_code == 3
    assert result.stderr == (
        "error: no approval request apr_nope; `proctor approvals list` shows pending ones\n"
    )


def test_a_blank_reason_is_refused(cli: Cli) -> None:
    _, approval_id = cli.pending_refund()
    result = cli("approvals", "approve", approval_id, "--as", "sam", "--role", "supervisor",
                 "--reason", "  ")  # fmt: skip
    assert result.exit_code == 3
    assert "give a reason for the decision" in result.stderr


def test_overdue_requests_are_listed_as_such_and_expire_to_a_hand_off(cli: Cli) -> None:
    run_id, approval_id = cli.pending_refund(at=datetime.now(UTC) - timedelta(hours=2))
    assert row_of(cli("approvals", "list").stdout, approval_id)[5] == "overdue"

    late = approve(cli, approval_id)
    assert late.exit_code == 3
    assert f"approval {approval_id} expired at " in late.stderr
    assert f"run {run_id} was handed off to a person" in late.stderr

    assert cli("approvals", "expire").stdout == "Expired 0 overdue approval request(s).\n"
    runs = cli("runs", "list")
    assert row_of(runs.stdout, run_id)[1:3] == ["handed_off", "approval_expired"]
    assert cli.refunds() == []


def test_expire_hands_off_every_overdue_request(cli: Cli) -> None:
    past = datetime.now(UTC) - timedelta(hours=2)
    first, _ = cli.pending_refund(at=past)
    second, _ = cli.pending_refund(at=past)
    fresh, fresh_approval = cli.pending_refund()
    result = cli("approvals", "expire")
    assert result.exit_code == 0
    assert result.stdout == "Expired 2 overdue approval request(s).\n"
    runs = cli("runs", "list").stdout
    assert row_of(runs, first)[1] == row_of(runs, second)[1] == "handed_off"
    assert row_of(runs, fresh)[1] == "awaiting_approval"
    pending = cli("approvals", "list").stdout
    assert row_of(pending, fresh_approval)[5] == "pending"
    assert cli("audit", "verify").exit_code == 0
