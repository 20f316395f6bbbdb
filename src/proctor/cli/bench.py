"""``proctor bench``: what governance costs per call."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from proctor.bench import redaction as redaction_bench
from proctor.bench import service as service_bench
from proctor.bench import telemetry as telemetry_bench
from proctor.bench.governed_call import measure
from proctor.cli._common import console, fails_clearly


@fails_clearly
def bench(
    what: str = typer.Argument(
        "calls",
        help="`calls` (governed calls), `redaction`, `telemetry` (span export) or "
        "`service` (the HTTP service under load).",
    ),
    corpus: Path = typer.Option(
        Path("tests/redaction/corpus.jsonl"), help="Labelled corpus for `redaction`."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    calls: int = typer.Option(10_000, min=100, help="Governed calls per repeat."),
    repeats: int = typer.Option(3, min=1, help="Fresh stores to repeat on; figures are medians."),
    runs: int = typer.Option(
        10_000, min=service_bench.SAMPLE_RUNS, help="Runs in the store for `service`."
    ),
    clients: int = typer.Option(50, min=1, help="Concurrent HTTP clients for `service`."),
    requests: int = typer.Option(2_000, min=1, help="Requests per repeat for `service`."),
    db_url: str | None = typer.Option(
        None, help="For `service`: a PostgreSQL server to build the store on (default SQLite)."
    ),
) -> None:
    """Time governed calls of a trivial tool, measure the redaction detectors, span export,
    or the HTTP service under load."""
    if what == "redaction":
        _print(redaction_bench.measure(corpus, repeats), "Redaction detectors", as_json)
        return
    if what == "telemetry":  # span export to a local OTLP receiver: throughput, drops
        _print(telemetry_bench.measure(), "Span export (OTLP/HTTP, local receiver)", as_json)
        return
    if what == "service":
        _service(runs, clients, requests, repeats, db_url, as_json)
        return
    if what != "calls":
        raise typer.BadParameter(
            "expected `calls`, `redaction`, `telemetry` or `service`", param_hint="WHAT"
        )
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


def _service(
    runs: int, clients: int, requests: int, repeats: int, db_url: str | None, as_json: bool
) -> None:
    title = f"Service under load ({runs:,} runs, {clients} clients, {repeats} repeats, medians)"
    try:
        if as_json:
            figures = service_bench.measure(runs, clients, requests, repeats, db_url)
        else:
            with console.status(f"Loading the service: {title}…"):
                figures = service_bench.measure(runs, clients, requests, repeats, db_url)
    except service_bench.BenchError as exc:
        raise typer.BadParameter(str(exc)) from None
    _print(figures, title, as_json)


def _print(figures: dict[str, Any], title: str, as_json: bool) -> None:
    if as_json:
        print(json.dumps(figures, indent=2))
        return
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in _flat(figures):
        table.add_row(key, str(value))
    console.print(table)


def _flat(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in figures.items():
        if isinstance(value, dict):
            rows += _flat(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows
