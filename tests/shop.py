"""A small shop the runtime's tests govern: a real SQLite system of record, its tools, its
policy, and ``Env``, a test environment over them (the ``env`` fixture)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

from proctor import (
    Effect,
    Reconciliation,
    ResourceRef,
    RunSpec,
    Runtime,
    Settings,
    ToolContext,
    Trust,
    tool,
)
from proctor.testing import ManualClock, TestEnvironment
from proctor.tools import Tool, TransientToolError

POLICY = """
@id("reads")
permit(principal in Role::"agent", action in Action::"read", resource);

@id("refund-small")
permit(principal in Role::"agent", action == Action::"refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("100.00")) };

@id("refund-supervised")
@approval("supervisor")
permit(principal in Role::"agent", action == Action::"refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("1000.00")) };

@id("refund-cap-per-run")
forbid(principal, action == Action::"refund", resource)
when { context.run.totals.refund.amount.greaterThan(decimal("1500.00")) };

@id("email-anyone")
permit(principal in Role::"agent", action == Action::"send_email", resource);

@id("flaky-ok")
permit(principal in Role::"agent", action in [Action::"flaky_read", Action::"explode",
                                                 Action::"slow_write", Action::"note",
                                                 Action::"slow_sync_write"], resource);
"""


class Ledger:
    """The system of record: an effect is a row keyed by its idempotency key."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with self._conn() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS effects (key TEXT PRIMARY KEY, tool TEXT, body TEXT)"
            )
            conn.execute("CREATE TABLE IF NOT EXISTS attempts (key TEXT, tool TEXT)")

    def _conn(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=30)

    def apply(self, key: str, tool_name: str, body: str) -> None:
        with self._conn() as conn:
            conn.execute("INSERT INTO attempts VALUES (?, ?)", (key, tool_name))
            conn.execute("INSERT INTO effects VALUES (?, ?, ?)", (key, tool_name, body))

    def attempt(self, key: str, tool_name: str) -> None:
        with self._conn() as conn:
            conn.execute("INSERT INTO attempts VALUES (?, ?)", (key, tool_name))

    def effects(self, tool_name: str | None = None) -> list[tuple[str, str, str]]:
        with self._conn() as conn:
            query = "SELECT key, tool, body FROM effects"
            if tool_name:
                return conn.execute(query + " WHERE tool = ?", (tool_name,)).fetchall()
            return conn.execute(query).fetchall()

    def attempts(self, tool_name: str) -> int:
        with self._conn() as conn:
            row = conn.execute(
                "SELECT count(*) FROM attempts WHERE tool = ?", (tool_name,)
            ).fetchone()
            return int(row[0])

    def has(self, key: str) -> bool:
        with self._conn() as conn:
            return (
                conn.execute("SELECT 1 FROM effects WHERE key = ?", (key,)).fetchone() is not None
            )


def _slow_tools(ledger: Ledger) -> list[Tool]:
    """Tools that outlive their timeout: an async one, and a sync one whose thread goes on."""

    @tool(effect=Effect.WRITE, timeout_s=0.05)
    async def slow_write(ctx: ToolContext) -> None:
        import asyncio

        ledger.attempt(ctx.idempotency_key, "slow_write")
        await asyncio.sleep(5)

    @tool(effect=Effect.WRITE, timeout_s=0.05)
    def slow_sync_write(ctx: ToolContext) -> str:
        import time

        time.sleep(0.3)  # a blocking client: past the timeout, the thread goes on
        ledger.apply(ctx.idempotency_key, "slow_sync_write", "late")
        return "written"

    @slow_sync_write.reconcile
    def slow_sync_done(args: Any, ctx: ToolContext) -> Reconciliation:
        return Reconciliation(ledger.has(ctx.idempotency_key))

    return [slow_write, slow_sync_write]


def make_tools(ledger: Ledger, *, flaky_failures: int = 0) -> list[Tool]:
    state = {"flaky": flaky_failures}

    @tool(effect=Effect.READ, resource=lambda a: ResourceRef("Order", a.order_id))
    async def lookup(order_id: str) -> dict[str, Any]:
        return {"order_id": order_id, "status": "delivered"}

    @tool(
        effect=Effect.IRREVERSIBLE,
        scopes=["payments:refund"],
        resource=lambda a: ResourceRef("Order", a.order_id, {"status": "delivered"}),
    )
    async def refund(order_id: str, amount: Decimal, ctx: ToolContext) -> dict[str, Any]:
        ledger.apply(ctx.idempotency_key, "refund", f"{order_id}:{amount}")
        return {"refunded": amount, "order_id": order_id, "scopes": sorted(ctx.credential.scopes)}

    @refund.reconcile
    def refund_done(args: Any, ctx: ToolContext) -> Reconciliation:
        if ledger.has(ctx.idempotency_key):
            return Reconciliation(True, {"refunded": str(args.amount), "order_id": args.order_id})
        return Reconciliation(False)

    @tool(effect=Effect.WRITE, sensitive=["to"], trust=Trust.TRUSTED)
    def send_email(to: str, body: str, ctx: ToolContext) -> str:
        ledger.apply(ctx.idempotency_key, "send_email", f"{to}:{body}")
        return "sent"

    @tool(effect=Effect.READ, max_retries=2)
    async def flaky_read(q: str) -> str:
        ledger.attempt(q, "flaky_read")
        if state["flaky"] > 0:
            state["flaky"] -= 1
            raise TransientToolError("upstream 503")
        return f"result for {q}"

    @tool(effect=Effect.WRITE)
    async def explode(reason: str) -> None:
        raise RuntimeError(f"boom: {reason}")

    @tool(effect=Effect.WRITE)
    async def note(text: str) -> str:
        return text

    return [lookup, refund, send_email, flaky_read, explode, note, *_slow_tools(ledger)]


def shop_yaml(ttl_s: int = 3600) -> str:
    return f"label: test-shop\napprovals:\n  ttl_s: {ttl_s}\n"


def write_bundle(folder: Path, policy: str = POLICY, ttl_s: int = 3600) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.cedar").write_text(policy)
    (folder / "proctor.yaml").write_text(shop_yaml(ttl_s))
    return folder


class Env:
    """The shop under test: its ledger and tools, the policy above in ``<tmp>/bundle``, a
    store at ``db_url`` and a manual clock, as a ``proctor.testing.TestEnvironment``."""

    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.tmp = tmp_path
        self.db_url = db_url
        self.ledger = Ledger(tmp_path / "ledger.db")
        self.clock = ManualClock()
        self.kit = TestEnvironment(
            POLICY,
            proctor_yaml=shop_yaml(),
            tools=make_tools(self.ledger),
            db_url=db_url,
            directory=tmp_path,
            clock=self.clock,
            settings=Settings(lease_s=30),
            spec=RunSpec(
                agent="bot", role="agent", tenant="acme", workflow="support", requester="alice"
            ),
            telemetry="environment",  # the telemetry tests set OTEL_* variables
            retry_backoff_s=0.001,
        )
        assert isinstance(self.kit.bundle, Path)
        self.bundle: Path = self.kit.bundle

    @property
    def runtimes(self) -> list[Runtime]:
        return self.kit.runtimes

    def runtime(self, **overrides: Any) -> Runtime:
        """A new runtime on the same store: what another process would build."""
        return self.kit.new_runtime(**overrides)

    def spec(self, **overrides: Any) -> RunSpec:
        """The shop's run spec (agent ``bot`` of tenant ``acme``, for ``alice``), changed."""
        return self.kit.spec(**overrides)

    def close(self) -> None:
        self.kit.close()
