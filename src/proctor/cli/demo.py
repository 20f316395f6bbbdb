"""``proctor demo``: the kernel walkthrough on the embedded store."""

from __future__ import annotations

import typer
from rich.table import Table

from proctor.cli._common import console, fails_clearly, run_async
from proctor.demo import app as demo_app
from proctor.demo import run_walkthrough
from proctor.runtime import Runtime
from proctor.settings import load_settings

_STYLE = {"executed": "green", "denied": "red", "awaiting_approval": "yellow"}


@fails_clearly
def demo() -> None:
    """Open a run, make allowed, denied and approval-needing calls, approve one, verify the log."""
    settings = load_settings()
    rt = Runtime.for_app(demo_app(), settings)
    console.print(f"Store: {settings.database_url}   Policy: {rt.policy.version}")
    result = run_async(run_walkthrough(rt))
    table = Table(title=f"Run {result.run_id}")
    for column in ("step", "proposal", "decision", "policies", "outcome"):
        table.add_column(column)
    for label, outcome in result.calls:
        decision = outcome.decision
        style = _STYLE.get(outcome.status.value, "white")
        table.add_row(
            str(outcome.step),
            label,
            decision.effect.value if decision else "",
            ", ".join(decision.policy_ids) if decision else "",
            f"[{style}]{outcome.status.value}[/]",
        )
    console.print(table)
    console.print(f"Run ended [bold]{result.state}[/].")
    report = result.report
    if report is None or not report.ok:
        problem = report.problems[0] if report else "not verified"
        console.print(f"[bold red]Audit log does not verify[/]: {problem}")
        raise typer.Exit(1)
    console.print(
        f"[green]Audit log verified[/]: {report.checked} entries, "
        f"{report.checkpoints} signed checkpoint(s)."
    )
    console.print(
        "\nNext, try:\n"
        "  proctor runs list\n"
        f"  proctor runs show {result.run_id}\n"
        "  proctor audit verify\n"
        f"  proctor policy matrix {rt.policy.path}\n"
        "  proctor bench"
    )
