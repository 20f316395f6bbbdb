"""The service under load: list runs, run detail and approve, from concurrent clients.

Each repeat builds a fresh store of ``runs`` runs (``service_store``). A sample goes
through the real runtime: model calls, reads, refunds that are allowed, held for
approval or denied, and runs that complete, fail safe, hand off or wait for approval.
The rest are cloned from the sample in bulk.

The service (the app ``proctor serve`` runs) then serves the store under uvicorn, in a
process of its own, and ``clients``
concurrent HTTP clients share a shuffled list of requests. Every approve call decides
a different pending request, so none is refused as already decided: any answer
other than 2xx counts as an error. After the load, ``/metrics`` is scraped on the same
store: once cold (the first scrape reads every step) and then warm.

Figures are medians over repeats; errors are summed. A repeat whose clients stopped
early (after 50 errors) is the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from proctor.bench.service_store import SAMPLE_RUNS, BenchError, BuiltStore, build_store, fresh_url
from proctor.runs.views import count_runs
from proctor.runtime import Runtime
from proctor.server.app import create_app
from proctor.settings import load_settings

__all__ = ["ENDPOINTS", "BenchError", "BuiltStore", "build_store", "measure", "service_app"]

ENDPOINTS = ("list_runs", "run_detail", "approve")


# -- the service -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def service_app() -> FastAPI:
    """The app ``proctor serve --public-metrics`` runs, over the store the environment names
    (for uvicorn): the bench scrapes ``/metrics`` as a scraper on a private network does."""
    return create_app(Runtime(policy=None, settings=load_settings()), public_metrics=True)


@contextlib.contextmanager
def serving(store: BuiltStore, log: Path) -> Iterator[str]:
    """The service on the store under uvicorn, in a process of its own; its base URL."""
    port = _free_port()
    env = os.environ | {"PROCTOR_HOME": str(store.home), "PROCTOR_DB_URL": store.url}
    command = [sys.executable, "-m", "uvicorn", "--factory", f"{__name__}:service_app"]
    with log.open("wb") as out:
        server = subprocess.Popen(
            # Keep-alive longer than any pause between the clients' requests, as behind a
            # load balancer: otherwise a client can send on a connection the server is
            # closing, and a read error says nothing about the service.
            [*command, "--host", "127.0.0.1", "--port", str(port), "--timeout-keep-alive", "75"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, server, log)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_until_up(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"proctor serve exited with {server.returncode}:\n{log.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"proctor serve did not answer /healthz within 30 s:\n{log.read_text()}")


# -- the load --------------------------------------------------------------------------


@dataclass
class Load:
    """What one repeat's clients did."""

    latencies_ms: dict[str, list[float]] = field(default_factory=lambda: {e: [] for e in ENDPOINTS})
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENDPOINTS, 0))
    error_examples: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    stopped_early: bool = False


def plan(store: BuiltStore, requests: int, seed: int = 11) -> list[tuple[str, str, dict[str, str]]]:
    """A shuffled list of (endpoint, path, query) for one repeat: half run details, a
    quarter lists, a quarter approvals, each approving a pending request of its own."""
    rng = random.Random(seed)
    approves = min(requests // 4, len(store.pending))
    lists = requests // 4
    details = requests - approves - lists
    filters: list[dict[str, str]] = [
        {},
        {"tenant": "acme"},
        {"state": "completed"},
        {"state": "awaiting_approval", "tenant": "globex"},
        {"workflow": "billing", "limit": "100"},
        {"offset": "500"},
    ]
    jobs = [("list_runs", "/api/v1/runs", filters[i % len(filters)]) for i in range(lists)]
    jobs += [
        ("run_detail", f"/api/v1/runs/{rng.choice(store.run_ids)}", {}) for _ in range(details)
    ]
    jobs += [
        ("approve", f"/api/v1/approvals/{approval}/approve", {})
        for approval in rng.sample(store.pending, approves)
    ]
    rng.shuffle(jobs)
    return jobs


async def drive(
    base: str,
    store: BuiltStore,
    jobs: list[tuple[str, str, dict[str, str]]],
    clients: int,
    max_errors: int = 50,
) -> Load:
    """The clients take the jobs in turn; they stop early once ``max_errors`` failed, as a
    failing service would otherwise keep every client waiting out its timeouts."""
    load = Load()
    queue = iter(jobs)
    viewer = {"Authorization": f"Bearer {store.viewer}"}
    approver = {"Authorization": f"Bearer {store.approver}"}

    async def client(http: httpx.AsyncClient) -> None:
        for endpoint, path, params in queue:
            if sum(load.errors.values()) >= max_errors:
                load.stopped_early = True
                return
            started = time.perf_counter()
            try:
                if endpoint == "approve":
                    response = await http.post(
                        path, headers=approver, json={"reason": "checked the order"}
                    )
                else:
                    response = await http.get(path, headers=viewer, params=params)
                failed = None if response.is_success else f"{response.status_code} {response.text}"
            except httpx.HTTPError as exc:
                failed = f"{type(exc).__name__}: {exc}"
            load.latencies_ms[endpoint].append((time.perf_counter() - started) * 1e3)
            if failed is not None:
                load.errors[endpoint] += 1
                if len(load.error_examples) < 5:
                    load.error_examples.append(f"{endpoint} {path}: {failed[:300]}")

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
        # Warm the server's statement caches and connection pool first.
        for path in ("/api/v1/runs", f"/api/v1/runs/{store.run_ids[0]}"):
            await http.get(path, headers=viewer)
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        load.wall_s = time.perf_counter() - started
    return load


def _scrape_ms(base: str, warm: int = 5) -> dict[str, float | None]:
    """The first scrape of /metrics, the median of the next ``warm``, and the body's size;
    ``None`` for a figure whose scrapes failed."""
    times: list[float | None] = []
    size = 0
    with httpx.Client(base_url=base, timeout=60) as http:
        for _ in range(warm + 1):
            started = time.perf_counter()
            try:
                response = http.get("/metrics")
            except httpx.HTTPError:
                response = None
            if response is None or not response.is_success:
                times.append(None)
                break  # a failing store fails every scrape alike, each after its timeout
            times.append((time.perf_counter() - started) * 1e3)
            size = len(response.content)
    warm_times = [t for t in times[1:] if t is not None]
    return {
        "first": times[0],
        "warm": statistics.median(warm_times) if warm_times else None,
        "bytes": size,
        "failed": sum(t is None for t in times),
    }


def _median_of(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 1) if present else None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


# -- one repeat, and the figures -------------------------------------------------------


def _one_repeat(total_runs: int, clients: int, requests: int, db_url: str | None) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="proctor-bench-service-", dir=Path.cwd()) as tmp,
        fresh_url(db_url, Path(tmp)) as url,
    ):
        workdir = Path(tmp)
        store = asyncio.run(build_store(workdir, url, total_runs))
        jobs = plan(store, requests)
        log = workdir / "server.log"
        with serving(store, log) as base:
            load = asyncio.run(drive(base, store, jobs, clients))
            scrape = _scrape_ms(base)
        kept = None
        if any(load.errors.values()) or scrape["failed"]:
            # The store goes with the repeat; the server's log stays for the errors.
            kept = Path.cwd() / f"proctor-bench-service-{uuid.uuid4().hex[:8]}.log"
            shutil.copyfile(log, kept)
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                in_store = count_runs(conn)
        finally:
            engine.dispose()
    done = sum(len(v) for v in load.latencies_ms.values())
    return {
        "build_s": store.build_s,
        "runs_in_store": in_store,
        "pending_before": len(store.pending),
        "load": load,
        "requests": done,
        "requests_per_s": done / load.wall_s if load.wall_s else 0.0,
        "stopped_early": load.stopped_early,
        "metrics": scrape,
        "server_log": str(kept) if kept else None,
    }


def measure(
    runs: int = 10_000,
    clients: int = 50,
    requests: int = 2_000,
    repeats: int = 3,
    db_url: str | None = None,
) -> dict[str, Any]:
    """Run the benchmark; one JSON-able dict of figures."""
    if runs < SAMPLE_RUNS:
        raise BenchError(f"the store needs at least {SAMPLE_RUNS} runs, not {runs}")
    if clients < 1 or repeats < 1:
        raise BenchError("give at least one client and one repeat")
    if requests < clients:
        raise BenchError(f"give each of the {clients} clients a request at least, not {requests}")
    results = []
    for _ in range(repeats):
        results.append(_one_repeat(runs, clients, requests, db_url))
        if results[-1]["stopped_early"]:
            break  # the service is failing: another repeat would only wait out more timeouts

    def med(values: list[float], digits: int = 1) -> float:
        return round(statistics.median(values), digits)

    endpoints = {}
    for e in ENDPOINTS:
        per = [r["load"].latencies_ms[e] for r in results]
        endpoints[e] = {
            "requests": int(statistics.median(len(v) for v in per)),
            "p50_ms": med([_percentile(v, 0.50) for v in per]),
            "p99_ms": med([_percentile(v, 0.99) for v in per]),
            "errors": sum(r["load"].errors[e] for r in results),
        }
    examples = [x for r in results for x in r["load"].error_examples][:5]
    logs = [r["server_log"] for r in results if r["server_log"]]
    return {
        "store": "postgresql" if db_url else "sqlite",
        "runs_in_store": int(statistics.median(r["runs_in_store"] for r in results)),
        "pending_approvals": int(statistics.median(r["pending_before"] for r in results)),
        "clients": clients,
        "requests_per_repeat": requests,
        "repeats": len(results),
        "build_store_s": med([r["build_s"] for r in results]),
        "endpoints": endpoints,
        "requests_per_s": med([r["requests_per_s"] for r in results]),
        "errors": sum(e["errors"] for e in endpoints.values()),
        "stopped_early": any(r["stopped_early"] for r in results),
        **({"error_examples": examples} if examples else {}),
        **({"server_logs": logs} if logs else {}),
        "metrics_scrape_ms": {
            key: _median_of([r["metrics"][key] for r in results]) for key in ("first", "warm")
        },
        "metrics_bytes": _median_of([r["metrics"]["bytes"] for r in results]),
        "metrics_scrapes_failed": sum(int(r["metrics"]["failed"]) for r in results),
    }
