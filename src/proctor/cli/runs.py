"""``proctor runs``: list runs, show one, resume one, recover those of dead workers."""

from __future__ import annotations

from typing import Any

import typer

from proctor.cli._common import (
    APP_OPTION,
    compact_table,
    console,
    fails_clearly,
    full_id,
    print_json,
    run_async,
    runtime,
    shortened,
    when,
)
from proctor.runs.views import RunFilter, RunView, list_runs, load_run, resolve_id
from proctor.states import RunState

app = typer.Typer(help="Inspect and resume runs.", no_args_is_help=True)


def _run_json(r: RunView) -> dict[str, Any]:
    return {
        "id": r.id,
        "tenant": r.tenant,
        "workflow": r.workflow,
        "agent": r.agent,
        "requester": r.requester,
        "state": r.state.value,
        "reason": r.reason.value if r.reason else None,
        "bundle_version": r.bundle_version,
        "release": r.release,
        "tool_calls": r.usage.tool_calls,
        "cost_usd": format(r.cost.usd, "f"),
        "created_at": r.created_at.isoformat(),
        "ended_at": r.ended_at.isoformat() if r.ended_at else None,
    }


@app.command("list")
@fails_clearly
def list_(
    tenant: str | None = typer.Option(None, help="Only this tenant's runs."),
    state: RunState | None = typer.Option(None, help="Only runs in this state."),
    release: str | None = typer.Option(None, help="Only runs opened under this release."),
    limit: int = typer.Option(50, min=1, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print the runs as JSON (full ids)."),
) -> None:
    """The newest runs with their state and reason. Ids are shown by their shortest
    unique start, which any command taking a run id accepts."""
    rt = runtime(None)
    with rt.store.read() as conn:
        where = RunFilter(tenant=tenant or None, state=state, release=release or None)
        rows = list_runs(conn, where, limit=limit)
    if as_json:
        print_json([_run_json(r) for r in rows])
        return
    if not rows:
        console.print("No runs.")
        return
    short = shortened(rt, "run", (r.id for r in rows))
    wide = console.width >= 100  # room for the workflow and the count of calls
    extra = ("workflow", "calls") if wide else ()
    if any(r.release for r in rows):
        extra = (*extra, "release")
    table = compact_table("run", "state", "reason", "tenant", *extra, "cost", "started")
    today = rt.clock.now().date()
    for r in rows:
        cells = [
            short[r.id],
            r.state.value,
            r.reason.value if r.reason else "",
            r.tenant,
            *((r.workflow, str(r.usage.tool_calls)) if wide else ()),
            f"${r.cost.usd:.4f}",
            when(r.created_at, today),
        ]
        if "release" in extra:
            cells.insert(len(cells) - 2, r.release or "")
        table.add_row(*cells)
    console.print(table)


@app.command("show")
@fails_clearly
def show(
    run_id: str = typer.Argument(..., help="The run's id, or its start (see `proctor runs list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the run and its steps as JSON."),
) -> None:
    """One run's steps: each call, its decision, and what became of it."""
    rt = runtime(None)
    with rt.store.read() as conn:
        record = load_run(conn, resolve_id(conn, "run", run_id))
    if as_json:
        steps = [
            {
                "step": s.idx,
                "tool": s.tool,
                "status": s.status.value,
                "decision": s.decision.effect.value if s.decision else None,
                "policy_ids": list(s.decision.policy_ids) if s.decision else [],
                "approval_id": s.approval_id,
            }
            for s in record.steps
        ]
        print_json({**_run_json(record), "steps": steps})
        return
    reason = record.reason.value if record.reason else ""
    console.print(
        f"[bold]{record.id}[/] {record.state.value} {reason} "
        f"(tenant {record.tenant}, policy {record.bundle_version})\n"
        f"workflow {record.workflow}, agent {record.agent}, {record.usage.tool_calls} tool "
        f"call(s), cost ${record.cost.usd:.4f}",
        highlight=False,
    )
    table = compact_table("step", "tool", "decision", "status", "policies")
    for s in record.steps:
        table.add_row(
            str(s.idx),
            s.tool,
            s.decision.effect.value if s.decision else "",
            s.status.value,
            ", ".join(s.decision.policy_ids if s.decision else ()),
        )
    console.print(table)


@app.command("resume")
@fails_clearly
def resume(
    run_id: str = typer.Argument(..., help="The run's id, or its start (see `proctor runs list`)."),
    app_ref: str | None = APP_OPTION,
) -> None:
    """Take a run over in this process: settle a crashed step, run an approved one."""
    if app_ref is None:
        console.print("Resuming needs the app's tools: pass --app MODULE:APP or set PROCTOR_APP.")
        raise typer.Exit(2)
    rt = runtime(app_ref)
    run = run_async(rt.resume(full_id(rt, "run", run_id)))
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
