"""``proctor``: govern agents' tool calls, inspect runs, approve, verify."""

from __future__ import annotations

import typer

from proctor.cli import approvals, audit, bench, demo, policy, runs
from proctor.cli import run as run_command
from proctor.cli._common import setup_logging

app = typer.Typer(
    name="proctor",
    help="A governed runtime for AI agents: typed tools, Cedar policy, approvals, budgets, "
    "and an audit log that verifies.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo.demo)
app.command("bench")(bench.bench)
app.command("run")(run_command.run)
app.add_typer(policy.app, name="policy")
app.add_typer(approvals.app, name="approvals")
app.add_typer(audit.app, name="audit")
app.add_typer(runs.app, name="runs")


def main() -> None:
    setup_logging()
    app()
