"""proctor's approval decisions applied to an interrupted SDK run's ``RunState``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agents import RunState
from agents.items import ToolApprovalItem

from proctor.integrations.governor import Governor
from proctor.integrations.openai_agents.tools import SessionRef, requires_approval
from proctor.runs.model import RunSpec
from proctor.runs.views import steps_of
from proctor.states import ApprovalStatus


@dataclass
class Applied:
    """What ``apply_approvals`` did to each interruption, by SDK tool call id."""

    approved: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    """Still waiting in proctor (or behind a call that waits): resuming interrupts again."""
    approval_ids: dict[str, str] = field(default_factory=dict)
    """call id -> proctor approval id, for each interruption proctor holds."""

    @property
    def decided(self) -> bool:
        return not self.pending


async def apply_approvals(
    state: RunState[Any, Any], governor: Governor, session: str, *, spec: RunSpec | None = None
) -> Applied:
    """Approve or reject each interruption of ``state`` as proctor decided its call.

    proctor's approval queue counts: approved there → ``state.approve``; denied or
    expired → ``state.reject`` with the reason the model reads; still pending → left as
    it is. A call that was held behind another one is proposed to proctor now: it is
    held again, with its own request, if policy requires approval, else approved in the
    SDK, which then invokes it through proctor. So is a call the SDK held because its
    arguments are not JSON: proctor refuses it as invalid.
    """
    current = SessionRef(session, spec)
    held = _approval_ids(governor, current)
    applied = Applied()
    unseen: list[ToolApprovalItem] = []
    for item in state.get_interruptions():
        call_id = item.call_id or ""
        approval_id = held.get(call_id)
        if approval_id is None:
            unseen.append(item)
            continue
        request = governor.approval(approval_id)
        if request.status is ApprovalStatus.APPROVED:
            state.approve(item)
            applied.approved.append(call_id)
        elif request.status is ApprovalStatus.PENDING:
            applied.pending.append(call_id)
        else:
            by = request.decided_by or "no one in time"
            why = f" ({request.decision_reason})" if request.decision_reason else ""
            refusal = f"Not allowed: {by} refused {request.tool}{why}; it did not run."
            state.reject(item, rejection_message=refusal)
            applied.rejected.append(call_id)
    for item in unseen:
        call_id, args = item.call_id or "", _arguments(item)
        name = item.tool_name
        # Arguments that are not JSON: invoking it through proctor refuses it as invalid.
        proposable = bool(name and call_id) and args is not None
        if proposable and await requires_approval(
            governor, current, name or "", args or {}, call_id
        ):
            applied.pending.append(call_id)
            continue
        state.approve(item)
        applied.approved.append(call_id)
    found = _approval_ids(governor, current)
    applied.approval_ids = {
        c: found[c] for c in [*applied.approved, *applied.rejected, *applied.pending] if c in found
    }
    return applied


def _approval_ids(governor: Governor, session: SessionRef) -> dict[str, str]:
    """call id -> approval id, for the calls of the session's run that asked for one."""
    run_id = governor.runtime.live_run_of((session.spec or governor.spec).tenant, session.id)
    if run_id is None:
        return {}
    with governor.runtime.store.read() as conn:
        return {
            s.call_id: s.approval_id
            for s in steps_of(conn, run_id)
            if s.call_id is not None and s.approval_id is not None
        }


def _arguments(item: ToolApprovalItem) -> dict[str, Any] | None:
    try:
        parsed = json.loads(item.arguments or "")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
