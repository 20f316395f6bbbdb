"""Requests and resources for the policy tests."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from proctor.policy import PolicyRequest, Principal, ResourceRef

BUNDLES = Path(__file__).parent / "bundles"
SUPPORT = BUNDLES / "support"

WriteBundle = Callable[..., Path]


def order(status: str = "delivered", tenant: str = "acme", **attrs: Any) -> ResourceRef:
    return ResourceRef("Order", "A-1", {"status": status, "tenant": tenant, **attrs})


def refund(
    amount: str | None = "20.00",
    *,
    role: str = "support_agent",
    resource: ResourceRef | None = None,
    mode: str = "normal",
    provenance: Mapping[str, Any] | None = None,
) -> PolicyRequest:
    args: dict[str, Any] = {
        "order_id": "A-1",
        "amount": None if amount is None else Decimal(amount),
    }
    return PolicyRequest(
        principal=Principal(agent="bot", role=role, tenant="acme"),
        tool="issue_refund",
        effect_class="irreversible",
        resource=resource or order(),
        args=args,
        run={"tenant": "acme", "workflow": "refunds", "mode": mode, "calls": 2, "tainted": False},
        extra_context={} if provenance is None else {"provenance": provenance},
    )


def call(
    tool: str,
    effect_class: str,
    *,
    role: str = "support_agent",
    agent: str = "bot",
    resource: ResourceRef | None = None,
    args: Mapping[str, Any] | None = None,
    run: Mapping[str, Any] | None = None,
    extra_context: Mapping[str, Any] | None = None,
) -> PolicyRequest:
    return PolicyRequest(
        principal=Principal(agent=agent, role=role, tenant="acme"),
        tool=tool,
        effect_class=effect_class,
        resource=resource,
        args=args or {},
        run=run or {"mode": "normal"},
        extra_context=extra_context or {},
    )
