"""Governance around plain Python: a refund tool, a policy, one run.

python examples/embed/refunds.py
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from proctor import Approver, Effect, ResourceRef, RunSpec, Runtime, Settings, ToolContext, tool

POLICY = Path(__file__).parent / "policy"


@tool(
    effect=Effect.IRREVERSIBLE,
    scopes=["payments:refund"],
    resource=lambda a: ResourceRef("Order", a.order_id, {"total": Decimal("250.00")}),
)
async def issue_refund(order_id: str, amount: Decimal, ctx: ToolContext) -> dict[str, str]:
    """Refund an order; the idempotency key makes a retried request a no-op upstream."""
    return {"order_id": order_id, "amount": str(amount), "key": ctx.idempotency_key}


async def main() -> None:
    rt = Runtime(policy=POLICY, tools=[issue_refund], settings=Settings(home=Path(".proctor")))
    run = await rt.start_run(
        RunSpec(
            agent="support-bot",
            role="support_agent",
            tenant="acme",
            workflow="refunds",
            requester="alice",
        )
    )
    small = await run.call("issue_refund", {"order_id": "A-1", "amount": "25.00"})
    print("small refund:", small.status, small.decision.policy_ids if small.decision else "")
    large = await run.call("issue_refund", {"order_id": "A-1", "amount": "200.00"})
    print("large refund:", large.status, "approval", large.approval_id)
    assert large.approval_id is not None
    rt.approvals.approve(large.approval_id, Approver("sam", "supervisor"), "receipt checked")
    resumed = await rt.resume(run.id)  # could be another process
    done = await resumed.resume_pending()
    print("after approval:", done.status if done else None)
    await resumed.complete()
    print("audit log verifies:", rt.verify_audit().ok)
    rt.close()


if __name__ == "__main__":
    asyncio.run(main())
