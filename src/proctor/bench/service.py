"""The service under load: list runs, run detail and approve, from concurrent clients.

Each repeat builds a fresh store of ``runs`` runs. A sample goes through the real
runtime: model calls, reads, refunds that are allowed, held for approval or denied,
and runs that complete, fail safe, hand off or wait for approval. The rest are cloned
from the sample in bulk through the same tables, with ids, tenants and times of their
own (spread over 30 days); each clone that waits for approval has its own pending
request. Clones have no audit entries: no endpoint driven here reads them.

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
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from proctor.models import ModelRequest, ModelResponse, TokenUsage, UserMessage
from proctor.policy import ResourceRef
from proctor.runs import RunSpec
from proctor.runs.run import Run
from proctor.runtime import Runtime
from proctor.server.app import create_app
from proctor.server.tokens import Role, create_token
from proctor.settings import Settings, load_settings
from proctor.states import ApprovalStatus, Reason
from proctor.store import normalise_url
from proctor.store.tables import approvals, model_calls, runs, steps
from proctor.testing import FunctionModel
from proctor.tools import Effect, tool

ENDPOINTS = ("list_runs", "run_detail", "approve")
TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "tyrell")
SAMPLE_RUNS = 40
"""Runs made through the real runtime, from which the rest are cloned."""
KINDS = {"completed": 0.70, "awaiting": 0.15, "failed_safe": 0.10, "handed_off": 0.05}
"""The share of each kind of run in the store."""

_POLICY = """
@id("reads")
permit(principal in Role::"agent", action in Action::"read", resource);

@id("refund-small")
permit(principal in Role::"agent", action == Action::"refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("100.00")) };

@id("refund-supervised")
@approval("supervisor")
permit(principal in Role::"agent", action == Action::"refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("1000.00")) };
"""


def _order(args: Any) -> ResourceRef:
    return ResourceRef("Order", args.order_id)


@tool(effect=Effect.READ, resource=_order)
async def lookup(order_id: str) -> dict[str, Any]:
    """An order, as a shop's API would answer."""
    return {"order_id": order_id, "status": "delivered", "total": "120.00"}


@tool(effect=Effect.IRREVERSIBLE, resource=_order)
async def refund(order_id: str, amount: Decimal) -> dict[str, Any]:
    """A refund; small ones are allowed, larger ones need a supervisor, the rest are denied."""
    return {"order_id": order_id, "refunded": str(amount)}


def _answer(request: ModelRequest) -> ModelResponse:
    usage = TokenUsage(input_tokens=1200, cached_input_tokens=400, output_tokens=150)
    return ModelResponse(model="gpt-4o-mini-2024-07-18", content="Looking it up.", usage=usage)


_REQUEST = ModelRequest(
    messages=(UserMessage(content="Where is my refund?"),), max_output_tokens=300
)


class BenchError(ValueError):
    """Options the benchmark cannot run with."""


@dataclass
class BuiltStore:
    """A built store: where it is, and what the load may ask for."""

    url: str
    home: Path
    run_ids: list[str]
    pending: list[str]
    viewer: str = ""
    approver: str = ""
    build_s: float = 0.0


# -- building the store ---------------------------------------------------------------


async def _sample_run(rt: Runtime, kind: str, n: int) -> Run:
    tenant = TENANTS[n % len(TENANTS)]
    spec = RunSpec(
        agent="support-bot",
        role="agent",
        tenant=tenant,
        workflow="support" if n % 3 else "billing",
        requester=f"customer-{n}",
    )
    run = await rt.start_run(spec)
    model = FunctionModel(_answer, name="openai:gpt-4o-mini")
    await run.ask(model, _REQUEST)
    await run.call("lookup", {"order_id": f"A-{n}"})
    if kind == "completed":
        await run.ask(model, _REQUEST)
        await run.call("refund", {"order_id": f"A-{n}", "amount": "40.00"})
        await run.complete()
    elif kind == "awaiting":
        await run.call("refund", {"order_id": f"A-{n}", "amount": "500.00"})
    elif kind == "failed_safe":
        await run.fail_safe(Reason.TOOL_ERROR, "the shop's API answered 500")
    else:
        await run.call("refund", {"order_id": f"A-{n}", "amount": "5000.00"})
        await run.hand_off(Reason.POLICY_DENIED, "refund above every limit")
    return run


def _templates(
    conn: sa.Connection, sample: dict[str, list[str]]
) -> dict[str, dict[str, dict[str, list[dict[str, Any]]]]]:
    """The sample's rows, by kind of run, run id and table."""
    ids = [run_id for kind in sample.values() for run_id in kind]
    by_run: dict[str, dict[str, list[dict[str, Any]]]] = {
        run_id: {t.name: [] for t in (runs, steps, approvals, model_calls)} for run_id in ids
    }
    for table in (runs, steps, approvals, model_calls):
        column = table.c.id if table is runs else table.c.run_id
        for row in conn.execute(sa.select(table).where(column.in_(ids))):
            m = dict(row._mapping)
            by_run[m["id"] if table is runs else m["run_id"]][table.name].append(m)
    return {kind: {r: by_run[r] for r in run_ids} for kind, run_ids in sample.items() if run_ids}


def _clones(
    templates: dict[str, dict[str, dict[str, list[Any]]]],
    count: int,
    now: datetime,
    seed: int,
) -> Iterator[tuple[dict[str, list[dict[str, Any]]], str | None]]:
    """``count`` runs cloned from the sample, each with its rows; the pending approval's id."""
    rng = random.Random(seed)
    kinds = list(KINDS)
    weights = [KINDS[k] for k in kinds]
    for n in range(count):
        kind = rng.choices(kinds, weights)[0]
        source = rng.choice(list(templates[kind].values()))
        run_id = f"run_{uuid.uuid4().hex}"
        tenant = TENANTS[n % len(TENANTS)]
        # A run awaiting approval is recent (within its approval's time to live).
        age = timedelta(hours=rng.uniform(0, 20) if kind == "awaiting" else rng.uniform(0, 720))
        [base] = source["runs"]
        shift = (now - age) - base["created_at"]
        run = dict(base) | {
            "id": run_id,
            "tenant": tenant,
            "requester": f"customer-{n}",
            "owner": None,
            "lease_until": None,
        }
        for key in ("created_at", "updated_at", "ended_at"):
            if run[key] is not None:
                run[key] = run[key] + shift
        approval_ids: dict[str, str] = {}
        rows: dict[str, list[dict[str, Any]]] = {"runs": [run], "approvals": []}
        for a in source["approvals"]:
            approval_ids[a["id"]] = f"apr_{uuid.uuid4().hex}"
            rows["approvals"].append(
                a
                | {
                    "id": approval_ids[a["id"]],
                    "run_id": run_id,
                    "tenant": tenant,
                    "requester": f"customer-{n}",
                    "created_at": a["created_at"] + shift,
                    "expires_at": now + timedelta(days=7),
                }
            )
        rows["steps"] = [
            s
            | {
                "run_id": run_id,
                "idempotency_key": f"{run_id}/{s['idx']}",
                "approval_id": approval_ids.get(s["approval_id"] or ""),
                "created_at": s["created_at"] + shift,
                "finished_at": s["finished_at"] + shift if s["finished_at"] else None,
            }
            for s in source["steps"]
        ]
        rows["model_calls"] = [
            c
            | {
                "id": f"mc_{uuid.uuid4().hex}",
                "run_id": run_id,
                "tenant": tenant,
                "workflow": run["workflow"],
                "created_at": c["created_at"] + shift,
            }
            for c in source["model_calls"]
        ]
        pending = [a["id"] for a in rows["approvals"] if a["status"] == ApprovalStatus.PENDING]
        yield rows, (pending[0] if pending else None)


async def build_store(workdir: Path, url: str, total_runs: int, seed: int = 7) -> BuiltStore:
    """A store of ``total_runs`` runs on ``url``, and tokens for a viewer and an approver."""
    started = time.perf_counter()
    bundle = workdir / "bundle"
    bundle.mkdir()
    (bundle / "policy.cedar").write_text(_POLICY)
    (bundle / "proctor.yaml").write_text("label: bench-service\napprovals:\n  ttl_s: 604800\n")
    home = workdir / "state"
    rt = Runtime(policy=bundle, tools=[lookup, refund], settings=Settings(home=home, db_url=url))
    try:
        sample: dict[str, list[str]] = {kind: [] for kind in KINDS}
        kinds = list(KINDS)
        for n in range(min(SAMPLE_RUNS, total_runs)):
            kind = kinds[n % len(kinds)]
            run = await _sample_run(rt, kind, n)
            await run.release()
            sample[kind].append(run.id)
        store = BuiltStore(url=url, home=home, run_ids=[], pending=[])
        for ids in sample.values():
            store.run_ids += ids
        with rt.store.read() as conn:
            store.pending = [
                r
                for (r,) in conn.execute(
                    sa.select(approvals.c.id).where(
                        approvals.c.status == ApprovalStatus.PENDING.value
                    )
                )
            ]
            templates = _templates(conn, sample)
        batch: dict[str, list[dict[str, Any]]] = {
            t.name: [] for t in (runs, steps, approvals, model_calls)
        }
        now = rt.clock.now()
        for rows, pending in _clones(templates, total_runs - len(store.run_ids), now, seed):
            store.run_ids.append(rows["runs"][0]["id"])
            if pending is not None:
                store.pending.append(pending)
            for name, values in rows.items():
                batch[name] += values
            if len(batch["runs"]) >= 2000:
                _insert(rt, batch)
        _insert(rt, batch)
        store.viewer, _ = create_token(rt.store, "bench-viewer", Role.VIEWER, None, now)
        store.approver, _ = create_token(
            rt.store, "bench-approver", Role.APPROVER, None, now, policy_roles=("supervisor",)
        )
    finally:
        rt.close()
    store.build_s = time.perf_counter() - started
    return store


def _insert(rt: Runtime, batch: dict[str, list[dict[str, Any]]]) -> None:
    """One transaction of many rows; parents before children."""
    with rt.store.write() as conn:
        for table in (runs, steps, approvals, model_calls):
            if batch[table.name]:
                conn.execute(table.insert(), batch[table.name])
            batch[table.name] = []


# -- the service -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def service_app() -> FastAPI:
    """The app ``proctor serve`` runs, over the store the environment names (for uvicorn)."""
    return create_app(Runtime(policy=None, settings=load_settings()))


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


@contextlib.contextmanager
def _fresh_url(db_url: str | None, workdir: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file in ``workdir``, or a schema of its own on
    the PostgreSQL server ``db_url`` names, dropped afterwards."""
    if db_url is None:
        yield f"sqlite:///{workdir / 'proctor.db'}"
        return
    url = normalise_url(db_url)
    if not url.startswith("postgresql"):
        raise BenchError(f"--db-url must be a postgresql:// URL, not {db_url!r}")
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        separator = "&" if "?" in url else "?"
        yield f"{url}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


def _one_repeat(total_runs: int, clients: int, requests: int, db_url: str | None) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="proctor-bench-service-", dir=Path.cwd()) as tmp,
        _fresh_url(db_url, Path(tmp)) as url,
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
                in_store = conn.execute(sa.select(sa.func.count()).select_from(runs)).scalar_one()
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
