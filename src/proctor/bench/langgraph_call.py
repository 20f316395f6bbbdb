"""A governed call against LangGraph's durable tool call, side by side in one process.

LangGraph's side: a graph whose one node calls the same trivial tool, checkpointed
by ``SqliteSaver`` on a file with ``synchronous=FULL`` and invoked with
``durability="sync"`` (each step's checkpoint is committed before the call
returns). Proctor's side: one run's governed calls on a fresh SQLite store. The two
alternate in blocks, so a noisy moment on the machine hurts both alike; the ratio
is of their medians.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from pathlib import Path
from typing import Any, TypedDict

from proctor.bench.throughput import bench_home, runtime, spec

BLOCK = 100


class _State(TypedDict, total=False):
    n: int
    result: dict[str, Any]


def _graph(path: Path) -> Any:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    def call_tool(state: _State) -> _State:
        return {"result": {"n": state["n"], "label": "tick"}}  # the same trivial write

    conn = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    conn.execute("PRAGMA synchronous=FULL")
    graph = StateGraph(_State)
    graph.add_node("tool", call_tool)
    graph.add_edge(START, "tool")
    graph.add_edge("tool", END)
    return graph.compile(checkpointer=saver), conn


async def _side_by_side(workdir: Path, url: str, calls: int) -> tuple[list[float], list[float]]:
    app, conn = _graph(workdir / "langgraph.sqlite")
    rt = runtime(workdir, url)
    mine: list[float] = []
    theirs: list[float] = []
    try:
        run = await rt.start_run(spec(0))
        config = {"configurable": {"thread_id": "bench"}}
        for i in range(200):  # warm both
            await run.call("record_event", {"n": i})
            app.invoke({"n": i}, config, durability="sync")
        done = 0
        while done < calls:
            for i in range(BLOCK):
                t0 = time.perf_counter()
                await run.call("record_event", {"n": i})
                mine.append((time.perf_counter() - t0) * 1e6)
            for i in range(BLOCK):
                t0 = time.perf_counter()
                app.invoke({"n": i}, config, durability="sync")
                theirs.append((time.perf_counter() - t0) * 1e6)
            done += BLOCK
        await run.complete()
    finally:
        rt.close()
        conn.close()
    return mine, theirs


def measure(calls: int, repeats: int) -> dict[str, Any]:
    """Medians over repeats of each side's median call, and their ratio."""
    mine, theirs = [], []
    for _ in range(repeats):
        with bench_home(None) as (workdir, url):
            m, t = asyncio.run(_side_by_side(workdir, url, calls))
        mine.append(statistics.median(m))
        theirs.append(statistics.median(t))
    ours, langgraph = statistics.median(mine), statistics.median(theirs)
    return {
        "governed_call_us_median": round(ours, 1),
        "langgraph_durable_tool_call_us_median": round(langgraph, 1),
        "langgraph_over_governed_call": round(langgraph / ours, 2),
        "calls_per_side_per_repeat": calls,
        "langgraph_checkpointer": "SqliteSaver, synchronous=FULL, durability=sync",
    }
