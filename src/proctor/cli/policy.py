"""``proctor policy``: check a bundle, show its permission matrix."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from proctor.app import load_app
from proctor.cli._common import APP_OPTION, console, err_console, fails_clearly
from proctor.cli.policy_schema import app_schema
from proctor.policy import CellKind, MatrixCell, PolicyBundle, check_bundle, permission_matrix
from proctor.policy.check import check_against_schema

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
        None,
        "--app",
        help="Also check the policies against the schema of the app's tools (module:attr).",
    ),
) -> None:
    """Report syntax, schema and settings errors with file and line; exit 1 if there are any.

    With --app, every policy is also checked against the Cedar schema written from the
    app's tools (see `proctor policy schema`): each unknown tool, role, argument or
    attribute is named with its file and line. Without a schema, a misspelt name is no
    error to Cedar: the policy simply never matches."""
    loaded_app = load_app(app_ref) if app_ref else None
    if loaded_app is None:
        issues = check_bundle(bundle)
    else:
        issues = check_against_schema(bundle, app_schema(loaded_app), f"the tools of {app_ref}")
    if issues:
        for issue in issues:
            err_console.print(f"[red]{issue}[/]", highlight=False)
        err_console.print(f"{len(issues)} problem(s) in {bundle}.")
        raise typer.Exit(1)
    loaded = PolicyBundle.load(bundle)
    if loaded_app is not None:
        for t in loaded_app.tools:
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
    if tools is None:
        _unseen_tools(result.tools)
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


def _unseen_tools(named: tuple[str, ...]) -> None:
    """Without the app, the matrix knows only the tools policies name one by one: say so."""
    err_console.print(
        f"note: without --app, the matrix shows only the tools the policies name "
        f"({', '.join(named) or 'none'}). Tools that policies cover by their effect class "
        f'(action in Action::"read", ...) and tools no policy names are not shown, and '
        "cells leave out policies on effect classes. Give --app module:attr for every tool "
        "of the app with its effect class.",
        highlight=False,
        markup=False,
    )


@app.command("schema")
@fails_clearly
def schema(
    app_ref: str = typer.Option(..., "--app", help="The app whose tools the schema declares."),
    out: Path | None = typer.Option(
        None, "--out", help="Write the schema to this file (e.g. BUNDLE/schema.cedarschema)."
    ),
) -> None:
    """Print the Cedar schema of an app's tools: each tool an action with its arguments'
    types, the resource types and attributes its hooks declare, the run's context, and
    the app's roles."""
    text = app_schema(load_app(app_ref))
    if out is None:
        print(text, end="")
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"Wrote {out}.", highlight=False, markup=False)
