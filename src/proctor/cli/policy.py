"""``proctor policy``: check a bundle, show its permission matrix."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from proctor.app import load_app
from proctor.cli._common import APP_OPTION, console, err_console, fails_clearly
from proctor.policy import CellKind, MatrixCell, PolicyBundle, check_bundle, permission_matrix

app = typer.Typer(help="Check policy bundles and show what they permit.", no_args_is_help=True)

_STYLE = {
    CellKind.ALLOWED: "green",
    CellKind.NEEDS_APPROVAL: "yellow",
    CellKind.CONDITIONAL: "cyan",
    CellKind.DENIED: "red",
}


@app.command("check")
@fails_clearly
def check(
    bundle: Path = typer.Argument(..., help="The bundle folder."),
    app_ref: str | None = typer.Option(
        None, "--app", help="Also check the app's tool declarations (module:attr)."
    ),
) -> None:
    """Report syntax, schema and settings errors with file and line; exit 1 if there are any.
    With ``--app``, warn about tools that do not say whose words their result carries."""
    issues = check_bundle(bundle)
    if issues:
        for issue in issues:
            err_console.print(f"[red]{issue}[/]", highlight=False)
        err_console.print(f"{len(issues)} problem(s) in {bundle}.")
        raise typer.Exit(1)
    loaded = PolicyBundle.load(bundle)
    if app_ref:
        for t in load_app(app_ref).tools:
            if t.trust is None:
                err_console.print(
                    f"[yellow]warning[/]: tool {t.name} does not declare trust: its result is "
                    "read as records. If it returns outside content (an email, a page, a "
                    "message, a file), say so with trust=Trust.UNTRUSTED or untrusted=[fields].",
                    highlight=False,
                )
    console.print(
        f"[green]OK[/]: {bundle} — {len(loaded.policies)} policies, version {loaded.version}."
    )


def _describe(cell: MatrixCell) -> str:
    style = _STYLE.get(cell.kind, "white")
    text = cell.kind.value.replace("_", " ")
    if cell.kind is CellKind.NEEDS_APPROVAL:
        text += f" ({' or '.join(cell.approval_roles)})"
    lines = [f"[{style}]{text}[/]", *(f"  {c}" for c in cell.conditions)]
    return "\n".join(lines)


@app.command("matrix")
@fails_clearly
def matrix(
    bundle: Path = typer.Argument(..., help="The bundle folder."),
    app_ref: str | None = APP_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the matrix as JSON."),
) -> None:
    """For each role × tool: allowed, needs approval (by whom), conditional (on what), denied."""
    loaded = PolicyBundle.load(bundle)
    tools = None
    if app_ref:
        tools = {t.name: t.effect.value for t in load_app(app_ref).tools}
    result = permission_matrix(loaded, tools=tools)
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
        return
    table = Table(title=f"Permission matrix — {loaded.version}", show_lines=True)
    table.add_column("role \\ tool")
    for tool_name in result.tools:
        table.add_column(tool_name)
    for role, cells in result.rows():
        table.add_row(role, *(_describe(c) for c in cells))
    console.print(table)
