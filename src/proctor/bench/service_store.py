"""Building the store ``proctor bench service`` serves: a sample of runs made through the
real runtime, and the rest cloned from it in bulk through the same tables, with ids,
tenants and times of their own (spread over 30 days); each clone that waits for approval
has its own pending request. Clones have no audit entries: no endpoint driven reads them.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from proctor.models import ModelRequest, ModelResponse, TokenUsage, UserMessage
from proctor.policy import ResourceRef
from proctor.runs import RunSpec
from proctor.runs.run import Run
from proctor.runtime import Runtime
from proctor.server.tokens import Role, create_token
from proctor.settings import Settings
from proctor.states import ApprovalStatus, Reason
from proctor.store import normalise_url
from proctor.store.tables import approvals, model_calls, runs, steps
from proctor.testing import FunctionModel
from proctor.tools import Effect, tool

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


@contextlib.contextmanager
def fresh_url(db_url: str | None, workdir: Path) -> Iterator[str]:
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
