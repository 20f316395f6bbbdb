"""``proctor``: govern agents' tool calls, inspect runs, approve, verify."""

from __future__ import annotations

import typer

from proctor.cli import approvals, audit, bench, demo, evals, mcp, policy, runs, serve, tokens
from proctor.cli import evidence as evidence_command
from proctor.cli import release as release_command
from proctor.cli import retention as retention_command
from proctor.cli import run as run_command
from proctor.cli import worker as worker_command
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
app.add_typer(evals.app, name="eval")
policy.app.command("replay")(evals.policy_replay)
scenario_app = typer.Typer(help="Write and check eval scenarios.", no_args_is_help=True)
scenario_app.command("from-run")(evals.scenario_from_run)
app.add_typer(scenario_app, name="scenario")
app.command("serve")(serve.serve)
app.command("worker")(worker_command.worker)
app.add_typer(tokens.app, name="tokens")
app.add_typer(retention_command.app, name="retention")
app.add_typer(evidence_command.app, name="evidence")
app.add_typer(mcp.app, name="mcp")
app.add_typer(release_command.app, name="release")


def main() -> None:
    setup_logging()
    app()
