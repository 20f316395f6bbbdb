"""``proctor runs``: list runs, show one, resume one, recover those of dead workers."""

from __future__ import annotations

import typer
from rich.table import Table

from proctor.cli._common import APP_OPTION, console, fails_clearly, run_async, runtime
from proctor.runs.views import RunFilter, list_runs, load_run
from proctor.states import RunState

app = typer.Typer(help="Inspect and resume runs.", no_args_is_help=True)


@app.command("list")
@fails_clearly
def list_(
    tenant: str | None = typer.Option(None, help="Only this tenant's runs."),
    state: RunState | None = typer.Option(None, help="Only runs in this state."),
    release: str | None = typer.Option(None, help="Only runs opened under this release."),
    limit: int = typer.Option(50, min=1, help="At most this many, newest first."),
) -> None:
    """The newest runs with their state and reason."""
    where = RunFilter(tenant=tenant or None, state=state, release=release or None)
    with runtime(None).store.read() as conn:
        rows = list_runs(conn, where, limit=limit)
    table = Table(title="Runs")
    columns = ("id", "tenant", "workflow", "agent", "state", "reason", "tool calls", "started")
    for column in (*columns, "release"):
        table.add_column(column, no_wrap=column in ("id", "run"))
    for r in rows:
        table.add_row(
            r.id,
            r.tenant,
            r.workflow,
            r.agent,
            r.state.value,
            r.reason.value if r.reason else "",
            str(r.usage.tool_calls),
            f"{r.created_at:%Y-%m-%d %H:%M:%S}",
            r.release or "",
        )
    console.print(table if rows else "No runs.")


@app.command("show")
@fails_clearly
def show(run_id: str) -> None:
    """One run's steps: each call, its decision, and what became of it."""
    with runtime(None).store.read() as conn:
        record = load_run(conn, run_id)
    reason = record.reason.value if record.reason else ""
    console.print(
        f"[bold]{record.id}[/] {record.state.value} {reason} "
        f"(tenant {record.tenant}, policy {record.bundle_version})"
    )
    table = Table()
    for column in ("step", "tool", "decision", "policies", "status"):
        table.add_column(column, no_wrap=column in ("id", "run"))
    for s in record.steps:
        table.add_row(
            str(s.idx),
            s.tool,
            s.decision.effect.value if s.decision else "",
            ", ".join(s.decision.policy_ids if s.decision else ()),
            s.status.value,
        )
    console.print(table)


@app.command("resume")
@fails_clearly
def resume(run_id: str, app_ref: str | None = APP_OPTION) -> None:
    """Take a run over in this process: settle a crashed step, run an approved one."""
    if app_ref is None:
        console.print("Resuming needs the app's tools: pass --app MODULE:APP or set PROCTOR_APP.")
        raise typer.Exit(2)
    rt = runtime(app_ref)
    run = run_async(rt.resume(run_id))
    outcome = run_async(run.resume_pending()) if not run.state.terminal else None
    run_async(run.release())  # the agent's own worker continues it from here
    console.print(f"Run {run.id} is {run.state}" + (f" ({run.reason})." if run.reason else "."))
    if outcome is not None:
        console.print(f"Step {outcome.step} ({outcome.tool}): {outcome.status.value}.")


@app.command("recover")
@fails_clearly
def recover() -> None:
    """Release what dead workers left held: runs whose worker's lease lapsed become ready
    for another worker (which resumes them), and model spend they reserved is released."""
    recovered = runtime(None).recover_expired()
    for run_id in recovered.runs:
        console.print(f"Run {run_id}: its worker's lease lapsed; ready for another worker.")
    console.print(
        f"{len(recovered.runs)} run(s) released, "
        f"{recovered.holds} model-spend reservation(s) released."
    )
