"""``proctor mcp``: a governing gateway in front of MCP servers (needs the ``mcp`` extra)."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import typer
from rich.table import Table

from proctor.cli._common import console, err_console, fails_clearly, run_async
from proctor.errors import ConfigError, missing_extra

app = typer.Typer(help="Govern the tools of MCP servers: a gateway in front of them.")

CONFIG_OPTION = typer.Option(
    Path("gateway.yaml"), "--config", "-c", help="The gateway's config (servers, tools, policy)."
)


def _gateway() -> ModuleType:
    try:
        import proctor.gateway as gateway
    except ModuleNotFoundError as exc:
        raise missing_extra("mcp", exc.name, "the MCP gateway") from exc
    return gateway


@app.command("serve")
@fails_clearly
def serve(
    config: Path = CONFIG_OPTION,
    transport: str = typer.Option(
        "stdio", help="stdio (for a desktop client that starts it) or http (streamable HTTP)."
    ),
    host: str = typer.Option("127.0.0.1", help="With --transport http: the address."),
    port: int = typer.Option(8765, min=1, max=65535, help="With --transport http: the port."),
) -> None:
    """Serve the upstream servers' tools, every call governed: over stdio, or over
    streamable HTTP at /mcp with bearer tokens from `proctor tokens create`."""
    if transport not in ("stdio", "http"):
        raise ConfigError(f"--transport is stdio or http, not {transport}")
    gateway = _gateway()
    gateway.load_config(config)  # a config error says so before anything starts
    if transport == "http":
        err_console.print(f"proctor mcp gateway on http://{host}:{port}/mcp")
    verify = None
    if transport == "http":
        from proctor.server.tokens import verify_token

        verify = verify_token
    run_async(gateway.serve(config, transport=transport, host=host, port=port, verify=verify))


@app.command("check")
@fails_clearly
def check(
    config: Path = CONFIG_OPTION,
    as_json: bool = typer.Option(False, "--json", help="Print the tools as JSON."),
) -> None:
    """Connect to every upstream; list its tools with their effect, trust and the policy's
    verdict per role; warn about tools with no declaration."""
    gateway = _gateway()
    tools, warnings = run_async(gateway.check(gateway.load_config(config)))
    if as_json:
        print(json.dumps({"tools": [t.to_json() for t in tools], "warnings": warnings}, indent=2))
        return
    roles = sorted({role for t in tools for role in t.verdicts})
    table = Table(title="MCP tools behind the gateway", show_lines=True)
    for column in ("tool", "server", "effect", "trust", *roles):
        table.add_column(column)
    for t in tools:
        cells = []
        for role in roles:
            cell = t.verdicts.get(role)
            if cell is None:
                cells.append("-")
            elif cell.approval_roles and cell.kind.value != "allowed":
                cells.append(f"{cell.kind.value} ({', '.join(cell.approval_roles)})")
            else:
                cells.append(cell.kind.value)
        effect = t.effect or "[red]undeclared: not offered[/red]"
        table.add_row(t.name, t.server, effect, t.trust or "-", *cells)
    console.print(table)
    for warning in warnings:
        err_console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
