"""``--help`` of the command and of each group: what a user reads first."""

from __future__ import annotations

import re

import pytest

from .conftest import Cli


def commands(help_text: str) -> list[str]:
    """The names in the help's Commands panel, in order."""
    panel = help_text.split("Commands")[1]
    return re.findall(r"^│ (\S+) ", panel, flags=re.MULTILINE)


def test_top_level_help_names_every_command(cli: Cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    assert "Usage: proctor [OPTIONS] COMMAND [ARGS]..." in result.stdout
    assert "A governed runtime for AI agents" in result.stdout
    assert commands(result.stdout) == [
        "demo",
        "bench",
        "run",
        "serve",
        "worker",
        "policy",
        "approvals",
        "audit",
        "runs",
        "eval",
        "scenario",
        "tokens",
        "retention",
        "evidence",
        "mcp",
        "release",
    ]


@pytest.mark.parametrize(
    ("group", "names"),
    [
        ("approvals", ["list", "approve", "deny", "expire"]),
        ("audit", ["verify", "public-key"]),
        ("runs", ["list", "show", "resume", "recover"]),
        ("policy", ["check", "matrix", "schema", "replay"]),
        ("eval", ["run", "schema", "show", "gate"]),
        ("scenario", ["from-run"]),
        ("tokens", ["create", "list", "revoke"]),
        ("mcp", ["serve", "check"]),
        (
            "release",
            [
                "create",
                "list",
                "show",
                "diff",
                "shadow",
                "canary",
                "promote",
                "rollback",
                "dry-run",
                "report",
                "monitor",
            ],
        ),
    ],
)
def test_each_group_help_names_its_commands(cli: Cli, group: str, names: list[str]) -> None:
    result = cli(group, "--help")
    assert result.exit_code == 0
    assert f"Usage: proctor {group} [OPTIONS] COMMAND [ARGS]..." in result.stdout
    assert commands(result.stdout) == names


@pytest.mark.parametrize(
    "args",
    [
        ("demo",),
        ("bench",),
        ("run",),
        ("approvals", "list"),
        ("approvals", "approve"),
        ("approvals", "deny"),
        ("approvals", "expire"),
        ("audit", "verify"),
        ("audit", "public-key"),
        ("runs", "list"),
        ("runs", "show"),
        ("runs", "resume"),
        ("runs", "recover"),
        ("policy", "check"),
        ("policy", "matrix"),
        ("policy", "replay"),
        ("eval", "run"),
        ("eval", "schema"),
        ("eval", "show"),
        ("eval", "gate"),
        ("scenario", "from-run"),
        ("serve",),
        ("worker",),
        ("tokens", "create"),
        ("tokens", "list"),
        ("tokens", "revoke"),
        ("mcp", "serve"),
        ("mcp", "check"),
    ],
)
def test_each_command_has_help(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args, "--help")
    assert result.exit_code == 0
    assert f"Usage: proctor {' '.join(args)} [OPTIONS]" in result.stdout


def test_approve_help_names_its_required_options(cli: Cli) -> None:
    out = cli("approvals", "approve", "--help").stdout
    for option in ("--as", "--role", "--reason", "--app"):
        assert option in out


def test_a_group_without_a_command_shows_its_help(cli: Cli) -> None:
    result = cli("audit")
    assert result.exit_code == 2
    assert "Usage: proctor audit [OPTIONS] COMMAND [ARGS]..." in result.stdout
