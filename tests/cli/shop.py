"""A tiny shop with a real system of record (SQLite), its tools, and their policy: the app
the command tests resume runs with (``--app tests.cli.shop:app``)."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

from proctor.app import App
from proctor.policy import ResourceRef, ResourceType, declare_resource
from proctor.settings import load_settings
from proctor.tools import Effect, Reconciliation, Tool, ToolContext, tool

BUNDLE = Path(__file__).parent / "shop_bundle"

_ORDERS = [
    ("A-1001", "c-42", "1250.00", "delivered"),
    ("A-1002", "c-42", "80.00", "shipped"),
]


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, customer TEXT, total TEXT, "
        "status TEXT)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS refunds (idempotency_key TEXT PRIMARY KEY, order_id TEXT, "
        "amount TEXT)"
    )
    conn.executemany("INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?)", _ORDERS)
    conn.commit()
    return conn


def shop_tools(db: Path) -> list[Tool]:
    """The shop's tools over the system of record at ``db``."""

    def order(order_id: str) -> dict[str, Any]:
        with _connect(db) as conn:
            row = conn.execute(
                "SELECT id, customer, total, status FROM orders WHERE id = ?", (order_id,)
            ).fetchone()
        if row is None:
            raise LookupError(f"no order {order_id}")
        return {"id": row[0], "customer": row[1], "total": Decimal(row[2]), "status": row[3]}

    def order_resource(args: Any) -> ResourceRef:
        found = order(args.order_id)
        return ResourceRef(
            "Order", found["id"], {"total": found["total"], "status": found["status"]}
        )

    declare_resource(order_resource, ResourceType("Order", {"total": Decimal, "status": str}))

    @tool(effect=Effect.READ, resource=order_resource)
    async def lookup_order(order_id: str) -> dict[str, Any]:
        """Look up an order by id."""
        return order(order_id)

    @tool(effect=Effect.IRREVERSIBLE, resource=order_resource, scopes=["refunds:write"])
    async def issue_refund(order_id: str, amount: Decimal, ctx: ToolContext) -> dict[str, Any]:
        """Refund part or all of an order to the customer's card."""
        with _connect(db) as conn:
            # The idempotency key makes a repeated request a no-op, as a payment API does.
            conn.execute(
                "INSERT OR IGNORE INTO refunds VALUES (?, ?, ?)",
                (ctx.idempotency_key, order_id, str(amount)),
            )
        return {"refund_id": ctx.idempotency_key, "order_id": order_id, "amount": amount}

    @issue_refund.reconcile
    def refund_applied(args: Any, ctx: ToolContext) -> Reconciliation:
        with _connect(db) as conn:
            row = conn.execute(
                "SELECT order_id, amount FROM refunds WHERE idempotency_key = ?",
                (ctx.idempotency_key,),
            ).fetchone()
        if row is None:
            return Reconciliation(happened=False)
        return Reconciliation(
            happened=True,
            result={"refund_id": ctx.idempotency_key, "order_id": row[0], "amount": row[1]},
        )

    return [lookup_order, issue_refund]


def app() -> App:
    """``--app tests.cli.shop:app``: the shop, with its data under the proctor home."""
    return App(tools=shop_tools(load_settings().home / "demo-shop.db"), policy=BUNDLE)
