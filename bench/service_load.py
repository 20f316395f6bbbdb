"""The service under load: list runs, run detail and approve from concurrent clients.

The same benchmark as `proctor bench service` (code in src/proctor/bench/service.py):
a store of 10,000 runs, the service on it in a process of its own, 50 clients; p50
and p99 per endpoint, requests per second, errors, and the time of a /metrics scrape.

    python bench/service_load.py [--runs 10000] [--clients 50] [--requests 2000]
                                 [--repeats 3] [--db-url postgresql://...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from proctor.bench.service import BenchError, measure


def _rows(figures: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in figures.items():
        if isinstance(value, dict):
            rows += _rows(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", str(value)))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000, help="runs in the store")
    parser.add_argument("--clients", type=int, default=50, help="concurrent HTTP clients")
    parser.add_argument("--requests", type=int, default=2_000, help="requests per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="fresh stores; figures are medians")
    parser.add_argument("--db-url", help="a PostgreSQL server to build the store on")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    try:
        figures = measure(args.runs, args.clients, args.requests, args.repeats, args.db_url)
    except BenchError as exc:
        parser.error(str(exc))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        table = Table(title="Service under load (medians over repeats)")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for key, value in _rows(figures):
            table.add_row(key, value)
        Console().print(table)
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
