"""The cost of one governed call, against a direct call of the same tool.

Each repeat opens a fresh embedded SQLite store (WAL, synchronous=FULL: every
intent entry is on disk before its tool runs), makes ``calls`` governed calls
of a trivial tool in one run, and times each. Figures are medians over repeats.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from proctor.audit.events import ActionOutcome
from proctor.policy import PolicyRequest, Principal
from proctor.runs import RunSpec
from proctor.runtime import Runtime
from proctor.settings import Settings
from proctor.store.tables import steps
from proctor.tools import Effect, tool

_POLICY = """
@id("bench-allow")
permit(principal in Role::"bench", action == Action::"record_event", resource)
when { context.args.n >= 0 };
"""


@tool(effect=Effect.WRITE)
async def record_event(n: int, label: str = "tick") -> dict[str, Any]:
    """A trivial write: the cost measured is proctor's, not the tool's."""
    return {"n": n, "label": label}


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _timed(fn: Callable[[int], Any], n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t0) * 1e6)
    return out


async def _one_repeat(workdir: Path, calls: int) -> dict[str, Any]:
    bundle = workdir / "bundle"
    bundle.mkdir()
    (bundle / "bench.cedar").write_text(_POLICY)
    (bundle / "proctor.yaml").write_text("label: bench\n")
    rt = Runtime(policy=bundle, tools=[record_event], settings=Settings(home=workdir / "state"))
    try:
        spec = RunSpec(
            agent="bench-agent",
            role="bench",
            tenant="bench",
            workflow="bench",
            requester="bench-user",
        )
        run = await rt.start_run(spec)
        for i in range(200):  # warm caches and the statement cache
            await run.call("record_event", {"n": i})
        governed = []
        for i in range(calls):
            t0 = time.perf_counter()
            await run.call("record_event", {"n": i})
            governed.append((time.perf_counter() - t0) * 1e6)
        await run.complete()

        direct = []
        for i in range(calls):
            t0 = time.perf_counter()
            await record_event.fn(n=i)
            direct.append((time.perf_counter() - t0) * 1e6)

        request = PolicyRequest(
            principal=Principal("bench-agent", "bench", "bench"),
            tool="record_event",
            effect_class="write",
            resource=None,
            args={"n": 1, "label": "tick"},
            run={"tenant": "bench", "calls": 1},
        )
        decide = _timed(lambda _: rt.policy.decide(request), calls)

        appends = []
        event = ActionOutcome("record_event", "succeeded", None, None, 1, 1.0)
        for _ in range(min(calls, 2000)):
            with rt.store.write(durable=False) as conn:
                t0 = time.perf_counter()
                rt.audit.append(
                    conn, "bench", event, run_id=run.id, step=0, bundle_version=run.bundle_version
                )
                appends.append((time.perf_counter() - t0) * 1e6)

        with rt.store.read() as conn:
            timings = [t for (t,) in conn.execute(sa.select(steps.c.timings_us)) if t]
            sync = conn.exec_driver_sql("PRAGMA synchronous").scalar()
            journal_mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
        stages = {
            stage: statistics.median(t[stage] for t in timings if stage in t)
            for stage in ("budget", "decide", "record_intent", "execute", "record_outcome")
        }
        verified = rt.verify_audit().ok
    finally:
        rt.close()
    return {
        "governed": governed,
        "direct": direct,
        "decide": decide,
        "append": appends,
        "stages": stages,
        "verified": verified,
        "synchronous": sync,
        "journal_mode": journal_mode,
    }


def measure(calls: int = 10_000, repeats: int = 3) -> dict[str, Any]:
    """Run the benchmark; one JSON-able dict of figures."""
    results = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="proctor-bench-", dir=Path.cwd()) as tmp:
            results.append(asyncio.run(_one_repeat(Path(tmp), calls)))

    def med(key: str) -> float:
        return float(statistics.median(statistics.median(r[key]) for r in results))

    governed_median = med("governed")
    all_governed = [v for r in results for v in r["governed"]]
    return {
        "calls_per_repeat": calls,
        "repeats": repeats,
        "governed_call_us_median": round(governed_median, 1),
        "governed_call_us_p99": round(
            statistics.median(_percentile(r["governed"], 0.99) for r in results), 1
        ),
        "direct_call_us_median": round(med("direct"), 2),
        "governed_calls_per_s": round(len(all_governed) / (sum(all_governed) / 1e6), 1),
        "policy_decision_us_median": round(med("decide"), 1),
        "audit_append_us_median": round(med("append"), 1),
        "stage_us_median": {
            stage: round(statistics.median(r["stages"][stage] for r in results), 1)
            for stage in results[0]["stages"]
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "durability": {
            "journal_mode": results[0]["journal_mode"],
            "synchronous": {2: "FULL", 1: "NORMAL", 0: "OFF", 3: "EXTRA"}.get(
                results[0]["synchronous"], str(results[0]["synchronous"])
            ),
            "intent_entry": "committed with fsync before the tool runs",
        },
        "audit_chain_verified": all(r["verified"] for r in results),
    }
