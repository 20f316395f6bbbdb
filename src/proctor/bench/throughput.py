"""Durable governed calls per second: concurrent runs in one process, and worker processes.

By concurrency: ``N`` runs in one process (asyncio tasks) each make their share of
the calls at once, on a fresh store (SQLite by default, or a schema of its own on
the PostgreSQL server ``db_url`` names). By workers (PostgreSQL): runs are queued
in the store and ``K`` worker processes claim and drive them (``proctor.worker``).
Every intent entry is durable before its tool runs, as in every other figure.
Runs are spread over a few tenants, as a platform's are.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from proctor.audit import SigningKey
from proctor.bench.governed_call import _POLICY, record_event
from proctor.bench.service_store import fresh_url
from proctor.runs import RunSpec
from proctor.runtime import Runtime
from proctor.settings import Settings
from proctor.worker import Worker

LEVELS = (1, 8, 32)
WORKERS = (1, 2, 4)
TENANTS = 8
WORKER_CONCURRENCY = 16


def spec(n: int) -> RunSpec:
    return RunSpec(
        agent="bench-agent",
        role="bench",
        tenant=f"bench-{n % TENANTS}",
        workflow="bench",
        requester="bench-user",
    )


@contextmanager
def bench_home(db_url: str | None) -> Iterator[tuple[Path, str]]:
    """A bundle, an audit key and a fresh store; yields the work folder and the store URL."""
    with tempfile.TemporaryDirectory(prefix="proctor-bench-", dir=Path.cwd()) as tmp:
        workdir = Path(tmp)
        bundle = workdir / "bundle"
        bundle.mkdir()
        (bundle / "bench.cedar").write_text(_POLICY)
        (bundle / "proctor.yaml").write_text("label: bench\n")
        SigningKey.load_or_generate(workdir / "audit-key.pem")
        with fresh_url(db_url, workdir) as url:
            yield workdir, url


def runtime(workdir: Path, url: str) -> Runtime:
    settings = Settings(
        home=workdir / "state", db_url=url, audit_key_file=workdir / "audit-key.pem"
    )
    return Runtime(
        policy=workdir / "bundle", tools=[record_event], settings=settings, telemetry=None
    )


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- concurrent runs in one process -------------------------------------------------------


async def _concurrent(rt: Runtime, level: int, calls: int) -> dict[str, Any]:
    runs = [await rt.start_run(spec(n)) for n in range(level)]
    per_run = max(1, calls // level)
    latencies: list[float] = []

    async def drive(run: Any, count: int) -> None:
        for i in range(count):
            t0 = time.perf_counter()
            await run.call("record_event", {"n": i})
            latencies.append((time.perf_counter() - t0) * 1e6)

    await asyncio.gather(*(drive(r, 20) for r in runs))  # warm caches and statements
    latencies.clear()
    group = rt.store.group_commit
    batches, units = group.batches, group.units
    began = time.perf_counter()
    await asyncio.gather(*(drive(r, per_run) for r in runs))
    wall = time.perf_counter() - began
    made = per_run * level
    per_commit = (group.units - units) / max(1, group.batches - batches)
    for run in runs:
        await run.complete()
    return {
        "calls_per_s": made / wall,
        "p50": statistics.median(latencies),
        "p99": _percentile(latencies, 0.99),
        "writes_per_commit": per_commit,
    }


def by_concurrency(
    db_url: str | None, calls: int, repeats: int, levels: tuple[int, ...] = LEVELS
) -> dict[str, Any]:
    """Calls per second and call latency with each number of concurrent runs."""
    results: dict[int, list[dict[str, Any]]] = {level: [] for level in levels}
    verified = True
    for _ in range(repeats):
        for level in levels:  # interleaved, so a noisy moment hurts every level alike
            with bench_home(db_url) as (workdir, url):
                rt = runtime(workdir, url)
                try:
                    results[level].append(asyncio.run(_concurrent(rt, level, calls)))
                    verified = verified and rt.verify_audit().ok
                finally:
                    rt.close()
    return {
        "governed_calls_per_s_by_concurrency": _median_of(results, "calls_per_s", 1),
        "governed_call_us_p50_by_concurrency": _median_of(results, "p50", 1),
        "governed_call_us_p99_by_concurrency": _median_of(results, "p99", 1),
        "writes_per_commit_by_concurrency": _median_of(results, "writes_per_commit", 2),
        "audit_chain_verified_by_concurrency": verified,
    }


def _median_of(results: dict[int, list[dict[str, Any]]], key: str, digits: int) -> dict[str, float]:
    return {
        str(level): round(statistics.median(r[key] for r in rs), digits)
        for level, rs in results.items()
    }


# -- worker processes ---------------------------------------------------------------------


def _worker_process(
    workdir: str, url: str, per_run: int, start: Any, done: Any
) -> None:  # pragma: no cover - runs in a child process
    rt = runtime(Path(workdir), url)
    latencies: list[float] = []

    async def drive(run_id: str) -> None:
        run = await rt.resume(run_id)
        for i in range(per_run):
            t0 = time.perf_counter()
            await run.call("record_event", {"n": i})
            latencies.append((time.perf_counter() - t0) * 1e6)
        await run.complete()

    async def serve() -> None:
        await Worker(rt, drive, concurrency=WORKER_CONCURRENCY, poll_s=0.05).serve(until_idle=True)

    try:
        start.wait()
        began = time.monotonic()
        asyncio.run(serve())
        done.put((began, time.monotonic(), len(latencies), latencies))
    finally:
        rt.close()


async def _queue(rt: Runtime, runs: int) -> None:
    for n in range(runs):
        run = await rt.start_run(spec(n))
        run.save_conversation([{"role": "user", "content": "bench"}])
        await run.release()


def _workers_once(db_url: str, workers: int, runs: int, per_run: int) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    with bench_home(db_url) as (workdir, url):
        rt = runtime(workdir, url)
        try:
            asyncio.run(_queue(rt, runs))
            start, done = ctx.Barrier(workers + 1), ctx.Queue()
            procs = [
                ctx.Process(target=_worker_process, args=(str(workdir), url, per_run, start, done))
                for _ in range(workers)
            ]
            for proc in procs:
                proc.start()
            start.wait(timeout=120)
            reports = [done.get(timeout=600) for _ in procs]
            for proc in procs:
                proc.join(timeout=60)
            verified = rt.verify_audit().ok
        finally:
            rt.close()
    wall = max(r[1] for r in reports) - min(r[0] for r in reports)
    latencies = [v for r in reports for v in r[3]]
    made = sum(r[2] for r in reports)
    return {
        "calls_per_s": made / wall,
        "p50": statistics.median(latencies),
        "p99": _percentile(latencies, 0.99),
        "calls": made,
        "verified": verified and made == runs * per_run,
    }


def by_workers(
    db_url: str, calls: int, repeats: int, workers: tuple[int, ...] = WORKERS
) -> dict[str, Any]:
    """Calls per second with each number of worker processes claiming queued runs."""
    runs = 64
    per_run = max(1, calls // runs)
    results: dict[int, list[dict[str, Any]]] = {k: [] for k in workers}
    for _ in range(repeats):
        for k in workers:
            results[k].append(_workers_once(db_url, k, runs, per_run))
    return {
        "governed_calls_per_s_by_workers": _median_of(results, "calls_per_s", 1),
        "governed_call_us_p50_by_workers": _median_of(results, "p50", 1),
        "governed_call_us_p99_by_workers": _median_of(results, "p99", 1),
        "worker_setup": {
            "queued_runs": runs,
            "calls_per_run": per_run,
            "concurrency_per_worker": WORKER_CONCURRENCY,
            "tenants": TENANTS,
        },
        "audit_chain_verified_by_workers": all(
            r["verified"] for rs in results.values() for r in rs
        ),
    }
