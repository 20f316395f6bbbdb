"""The approval queue as the pages show it: one compact line per request, filters, and the
full card of one request with its run so far and why the policy held it.

Arguments are the stored, redacted ones; a card's ``revealed`` arguments are whole only
when the approval queue revealed them to the person who may decide (and logged it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa

from proctor.approvals import ApprovalRequest
from proctor.runs.views import RunView, StepView, load_run, steps_of
from proctor.runs.views.aggregates import count_pending_approvals
from proctor.server.deciding import no_policy_role, shared_roles
from proctor.server.tokens import ApiToken, Role
from proctor.states import RunState

_AMOUNT_WORDS = ("amount", "total", "price", "usd", "sum")
"""An argument whose name holds one of these, with a number for a value, is the amount."""
KEY_ARGS = 3
"""Arguments shown on a request's line besides the amount."""
_SHOWN_CHARS = 40


@dataclass(frozen=True)
class QueueFilter:
    """Which pending requests the queue shows; ``None`` shows any."""

    role: str | None = None
    tenant: str | None = None
    tool: str | None = None
    tests: bool = False
    """Also show the requests of eval and demo runs."""


@dataclass(frozen=True)
class QueueItem:
    request: ApprovalRequest
    run: RunView
    """The run (without its history): workflow, state, the customer's request, origin."""
    step: StepView | None
    """The proposed call, as stored (redacted)."""
    earlier: list[StepView]
    """The run so far (filled on a card only)."""
    can_decide: bool
    why_not: str | None
    """Why this token may not decide it (shown instead of the buttons)."""
    roles: list[str] = field(default_factory=list)
    """The policy roles this token may decide it in."""
    revealed: Mapping[str, Any] | None = None
    """The arguments whole, revealed to this person (a card of someone who may decide)."""

    @property
    def workflow(self) -> str:
        return self.run.workflow

    @property
    def run_state(self) -> RunState:
        return self.run.state

    @property
    def args(self) -> Mapping[str, Any] | None:
        """What the card shows: the revealed arguments, else the stored ones."""
        if self.revealed is not None:
            return self.revealed
        return self.step.args if self.step is not None else None

    @property
    def masked(self) -> list[str]:
        """Arguments the revealed form shows whole and the stored form masks."""
        if self.revealed is None or self.step is None:
            return []
        return sorted(k for k, v in self.revealed.items() if self.step.args.get(k) != v)

    @property
    def amount(self) -> str | None:
        """The amount the call moves, when an argument says (stored form)."""
        found = _amount(self.step.args if self.step is not None else {})
        return found[1] if found else None

    @property
    def key_args(self) -> list[tuple[str, str]]:
        """The first few arguments besides the amount, shortened (stored form)."""
        args = self.step.args if self.step is not None else {}
        skip = (_amount(args) or ("", ""))[0]
        shown = []
        for name, value in args.items():
            if name == skip:
                continue
            text = value if isinstance(value, str) else _compact(value)
            if len(text) > _SHOWN_CHARS:
                text = text[: _SHOWN_CHARS - 1] + "…"
            shown.append((name, text))
        return shown[:KEY_ARGS]

    def age(self, now: datetime) -> float:
        return (now - self.request.created_at).total_seconds()


def _compact(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list):
        return f"[{len(value)} items]"
    if isinstance(value, dict):
        return "{" + ", ".join(list(value)[:3]) + ("…}" if len(value) > 3 else "}")
    return str(value)


def _amount(args: Mapping[str, Any]) -> tuple[str, str] | None:
    for name, value in args.items():
        if not any(word in name.lower() for word in _AMOUNT_WORDS):
            continue
        if isinstance(value, bool):
            continue
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            continue
        if number.is_finite():
            cents = number == number.quantize(Decimal("0.01"))
            return name, f"{number:,.2f}" if cents else f"{number:,f}"
    return None


def may_decide(request: ApprovalRequest, token: ApiToken) -> tuple[list[str], str | None]:
    """The roles ``token`` may decide ``request`` in, or why it may not decide it at all.

    Mirrors what ``deciding.py`` and the queue enforce, to show the right controls; the
    decision itself is still checked there."""
    if token.role is Role.VIEWER:
        return [], f"{token.name} is a viewer; deciding needs an approver or admin token"
    if token.name in (request.requester, request.agent):
        return [], f"{token.name} raised this request; nobody approves their own request"
    roles = shared_roles(request, token)
    if not roles:
        return [], no_policy_role(request, token)
    return roles, None


def _item(
    conn: sa.Connection, request: ApprovalRequest, token: ApiToken, *, history: bool
) -> QueueItem:
    views = steps_of(conn, request.run_id, before=request.step + 1)
    run = load_run(conn, request.run_id, history=False)
    roles, why_not = may_decide(request, token)
    return QueueItem(
        request=request,
        run=run,
        step=next((v for v in views if v.idx == request.step), None),
        earlier=[v for v in views if v.idx < request.step] if history else [],
        can_decide=why_not is None,
        why_not=why_not,
        roles=roles,
    )


@dataclass(frozen=True)
class Queue:
    items: list[QueueItem]
    """The requests the filter keeps, oldest first."""
    roles: list[str]
    tenants: list[str]
    tools: list[str]
    """What the filters offer: the values of every pending request this token sees."""
    hidden_tests: int
    """Requests of eval and demo runs left out (the filter shows them)."""

    @property
    def version(self) -> str:
        return queue_version(i.request for i in self.items)


def approval_queue(
    conn: sa.Connection, pending: Sequence[ApprovalRequest], token: ApiToken, f: QueueFilter
) -> Queue:
    everything = [_item(conn, r, token, history=False) for r in pending]
    live = [i for i in everything if f.tests or i.run.origin.value == "live"]
    kept = [
        i
        for i in live
        if (f.role is None or f.role in i.request.roles)
        and (f.tenant is None or i.request.tenant == f.tenant)
        and (f.tool is None or i.request.tool == f.tool)
    ]
    return Queue(
        items=kept,
        roles=sorted({r for i in everything for r in i.request.roles}),
        tenants=sorted({i.request.tenant for i in everything}),
        tools=sorted({i.request.tool for i in everything}),
        hidden_tests=len(everything) - len(live),
    )


def approval_card(conn: sa.Connection, request: ApprovalRequest, token: ApiToken) -> QueueItem:
    """One request in full: its run so far, for the card."""
    return _item(conn, request, token, history=True)


def queue_version(pending: Iterable[ApprovalRequest]) -> str:
    return ",".join(r.id for r in pending) or "empty"


def pending_count(conn: sa.Connection, tenant: str | None) -> int:
    """Pending requests of live runs: what the navigation's count shows."""
    return count_pending_approvals(conn, tenant, live_only=True)
