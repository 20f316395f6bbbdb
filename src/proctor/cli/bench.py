"""``proctor bench``: what governance costs per call."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from proctor.bench.governed_call import measure
from proctor.cli._common import console, fails_clearly
from proctor.errors import ConfigError, missing_extra
from proctor.store.engine import normalise_url

CORPUS = Path(__file__).resolve().parents[1] / "bench" / "redaction_corpus.jsonl"
"""The labelled redaction corpus, shipped with the package: the benchmark needs no checkout."""


@fails_clearly
def bench(
    what: str = typer.Argument(
        "calls",
        help="`calls` (governed calls), `redaction`, `telemetry` (span export) or "
        "`service` (the HTTP service under load) or `mcp` (a call through the MCP gateway "
        "against a direct one; use --calls 1000).",
    ),
    corpus: Path | None = typer.Option(
        None,
        help="Labelled corpus for `redaction`, one JSON object a line (default: the one "
        "shipped with proctor).",
    ),
    mb: list[float] = typer.Option(
        [1, 10, 50],
        "--mb",
        min=0.001,
        help="For `redaction`: sizes in MB of the adversarial inputs (repeat the option).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    calls: int = typer.Option(10_000, min=100, help="Governed calls per repeat."),
    repeats: int = typer.Option(3, min=1, help="Fresh stores to repeat on; figures are medians."),
    runs: int = typer.Option(10_000, min=40, help="Runs in the store for `service`."),
    clients: int = typer.Option(50, min=1, help="Concurrent HTTP clients for `service`."),
    requests: int = typer.Option(2_000, min=1, help="Requests per repeat for `service`."),
    db_url: str | None = typer.Option(
        None,
        help="For `calls` (runs at each concurrency; with PostgreSQL also worker processes) "
        "and `service`: a PostgreSQL server to build the stores on (default SQLite).",
    ),
) -> None:
    """Time governed calls of a trivial tool, measure the redaction detectors, span export,
    or the HTTP service under load."""
    if what == "redaction":
        from proctor.bench import redaction as redaction_bench

        _redaction(redaction_bench, _corpus(corpus), repeats, mb, as_json)
        return
    if what == "telemetry":  # span export to a local OTLP receiver: throughput, drops
        telemetry_bench = _optional("proctor.bench.telemetry", "otel")
        _print(telemetry_bench.measure(), "Span export (OTLP/HTTP, local receiver)", as_json)
        return
    if what == "service":
        _service(runs, clients, requests, repeats, db_url, as_json)
        return
    if what == "mcp":  # the gateway's added latency, over stdio
        mcp_bench = _optional("proctor.bench.mcp", "mcp")
        title = f"MCP tool call, direct and through the gateway ({calls:,} calls, stdio)"
        if as_json:
            _print(mcp_bench.measure(calls), title, as_json)
        else:
            with console.status(f"Timing: {title}…"):
                _print(mcp_bench.measure(calls), title, as_json)
        return
    if what != "calls":
        raise typer.BadParameter(
            "expected `calls`, `redaction`, `telemetry`, `service` or `mcp`", param_hint="WHAT"
        )
    if as_json:
        print(json.dumps(_calls(calls, repeats, db_url), indent=2))
        return
    with console.status(f"Timing {calls:,} governed calls × {repeats}…"):
        figures = _calls(calls, repeats, db_url)
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


def _calls(calls: int, repeats: int, db_url: str | None) -> dict[str, Any]:
    """One run's calls; runs at each concurrency (and worker processes, on PostgreSQL);
    and LangGraph's durable tool call beside a governed one, when LangGraph is installed."""
    from proctor.bench import throughput

    figures = measure(calls, repeats)
    figures["store"] = "postgresql" if db_url else "sqlite"
    figures.update(throughput.by_concurrency(db_url, calls, repeats))
    if db_url is not None and normalise_url(db_url).startswith("postgresql"):
        figures.update(throughput.by_workers(db_url, calls, repeats))
    try:
        import langgraph.checkpoint.sqlite  # noqa: F401 - present with the langgraph extra

        from proctor.bench import langgraph_call
    except ModuleNotFoundError as exc:
        figures["langgraph"] = (
            f"not measured: {exc.name} is missing (pip install 'proctor[langgraph]')"
        )
    else:
        figures["langgraph"] = langgraph_call.measure(min(calls, 2_000), repeats)
    return figures


def _service(
    runs: int, clients: int, requests: int, repeats: int, db_url: str | None, as_json: bool
) -> None:
    service_bench = _optional("proctor.bench.service", "server")
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


def _redaction(
    redaction_bench: Any, corpus: Path, repeats: int, sizes: list[float], as_json: bool
) -> None:
    title = (
        f"Redaction detectors (corpus {corpus}; adversarial MB/s at "
        f"{', '.join(f'{s:g}' for s in sizes)} MB, medians of {repeats})"
    )
    if as_json:
        figures = redaction_bench.measure(corpus, repeats, sizes)
    else:
        with console.status(f"Measuring: {title}…"):
            figures = redaction_bench.measure(corpus, repeats, sizes)
    _print(figures, title, as_json)


def _optional(module: str, extra: str) -> Any:
    """A benchmark that needs an extra: imported when asked for, with a clear error."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise missing_extra(extra, exc.name, "this benchmark") from exc


def _corpus(given: Path | None) -> Path:
    """The corpus given, else the one shipped with the package."""
    corpus = given or CORPUS
    if not corpus.is_file():
        raise ConfigError(
            f"no redaction corpus at {corpus}: pass --corpus PATH, a JSON Lines file of "
            '{"text": ..., "spans": [{"kind", "start", "end"}]}'
        )
    return corpus


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
