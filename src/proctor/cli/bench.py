"""``proctor bench``: what governance costs per call."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from proctor.bench.governed_call import measure
from proctor.cli._common import console, fails_clearly


@fails_clearly
def bench(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    calls: int = typer.Option(10_000, min=100, help="Governed calls per repeat."),
    repeats: int = typer.Option(3, min=1, help="Fresh stores to repeat on; figures are medians."),
) -> None:
    """Time governed calls of a trivial tool on the embedded, durable store."""
    if as_json:
        print(json.dumps(measure(calls, repeats), indent=2))
        return
    with console.status(f"Timing {calls:,} governed calls × {repeats}…"):
        figures = measure(calls, repeats)
    table = Table(title=f"Governed call ({calls:,} calls × {repeats} repeats, medians)")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in figures.items():
        if isinstance(value, dict):
            for sub, inner in value.items():
                table.add_row(f"{key}.{sub}", str(inner))
        else:
            table.add_row(key, str(value))
    console.print(table)
