"""What a stored run reads as: typed, frozen values, each parsed from its row in one place.

Arguments and results are as stored (redacted); sealed values are never read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from proctor.approvals import ApprovalRequest
from proctor.budgets import NANO, BudgetCaps
from proctor.policy import Decision
from proctor.runs.model import Origin, RunSpec, Usage
from proctor.states import Mode, Reason, RunState, StepStatus


@dataclass(frozen=True)
class StepError:
    """Why a step's call failed, as the journal recorded it."""

    kind: str
    """``error``, ``timeout``, ``still_running``, ``unknown``, ``not_applied``…"""
    type: str | None
    """The exception's class name, when an exception was the cause."""
    message: str

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> StepError:
        kind = stored.get("kind")
        return cls(
            kind=str(kind) if kind is not None else "unknown",
            type=stored.get("type"),
            message=str(stored.get("message", "")),
        )

    def to_json(self) -> dict[str, Any]:
        """As stored: ``type`` only when there is one."""
        found: dict[str, Any] = {"kind": self.kind}
        if self.type is not None:
            found["type"] = self.type
        found["message"] = self.message
        return found


@dataclass(frozen=True)
class StepView:
    """One step of a run's journal: the proposed call, its decision, what became of it."""

    idx: int
    tool: str
    args: Mapping[str, Any]
    """As stored: masked where the tool marks an argument sensitive."""
    reason: str | None
    """Why the proposer said it made the call."""
    status: StepStatus
    decision: Decision | None
    """``None`` only for a step recorded without one."""
    approval_id: str | None
    idempotency_key: str
    result: Any
    """As stored: redacted."""
    error: StepError | None
    attempts: int
    timings_us: Mapping[str, float]
    """Microseconds per stage of the governed call: budget, decide, execute…"""
    created_at: datetime
    finished_at: datetime | None
    call_id: str | None = None
    """The caller's own id for the call (a framework's tool call id)."""

    @classmethod
    def from_row(cls, m: Mapping[str, Any]) -> StepView:
        stored_decision = m["decision"] or {}
        return cls(
            idx=int(m["idx"]),
            tool=m["tool"],
            args=m["args"] if isinstance(m["args"], dict) else {},
            reason=m["reason"],
            status=StepStatus(m["status"]),
            decision=Decision.from_stored(stored_decision) if "effect" in stored_decision else None,
            approval_id=m["approval_id"],
            idempotency_key=m["idempotency_key"],
            result=m["result"],
            error=StepError.from_stored(m["error"]) if m["error"] else None,
            attempts=int(m["attempts"]),
            timings_us={k: float(v) for k, v in (m["timings_us"] or {}).items()},
            created_at=m["created_at"],
            finished_at=m["finished_at"],
            call_id=m.get("call_id"),
        )

    @property
    def latency_ms(self) -> float | None:
        """The governed call's own time (budget, decision, records, the tool), not waits."""
        if not self.timings_us:
            return None
        return sum(self.timings_us.values()) / 1000


@dataclass(frozen=True)
class ModelCallView:
    """One model call of a run, with what it used and cost."""

    id: str
    tenant: str
    workflow: str
    model: str
    """The model asked for, as ``provider:name``."""
    answered_by: str
    """The model that answered, as the provider named it."""
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    nano_usd: int
    reserved_nano_usd: int
    latency_ms: float
    tool_calls: int
    stop_reason: str
    created_at: datetime
    """When the answer came."""
    started_at: datetime | None = None
    """When the call was made, on the same clock (``None`` for calls stored before it was
    kept)."""
    response_id: str | None = None
    """The provider's id for its answer."""
    server_address: str | None = None
    server_port: int | None = None
    params: Mapping[str, Any] | None = None
    """The request's parameters: ``max_output_tokens``, ``temperature``, ``tools``."""

    @classmethod
    def from_row(cls, m: Mapping[str, Any]) -> ModelCallView:
        return cls(
            id=m["id"],
            tenant=m["tenant"],
            workflow=m["workflow"],
            model=m["model"],
            answered_by=m["answered_by"],
            input_tokens=int(m["input_tokens"]),
            cached_input_tokens=int(m["cached_input_tokens"]),
            output_tokens=int(m["output_tokens"]),
            reasoning_tokens=int(m["reasoning_tokens"]),
            nano_usd=int(m["nano_usd"]),
            reserved_nano_usd=int(m["reserved_nano_usd"]),
            latency_ms=float(m["latency_ms"]),
            tool_calls=int(m["tool_calls"]),
            stop_reason=m["stop_reason"],
            created_at=m["created_at"],
            started_at=m.get("started_at"),
            response_id=m.get("response_id"),
            server_address=m.get("server_address"),
            server_port=m.get("server_port"),
            params=m.get("params"),
        )

    @property
    def cost_usd(self) -> Decimal:
        return Decimal(self.nano_usd) / NANO

    @property
    def tokens(self) -> int:
        """Input, output and reasoning tokens (cached input is counted apart)."""
        return self.input_tokens + self.output_tokens + self.reasoning_tokens


@dataclass(frozen=True)
class ApprovalView:
    """An approval request of a run, and when it was decided."""

    request: ApprovalRequest
    decided_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> ApprovalView:
        return cls(ApprovalRequest.from_row(row), row._mapping["decided_at"])

    @property
    def wait(self) -> timedelta | None:
        """How long the run waited on a person; None while it still waits."""
        return None if self.decided_at is None else self.decided_at - self.request.created_at


@dataclass(frozen=True)
class RunCost:
    """What a run's model calls used and cost, summed."""

    nano_usd: int = 0
    calls: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0

    @classmethod
    def of(cls, calls: Sequence[ModelCallView]) -> RunCost:
        return cls(
            nano_usd=sum(c.nano_usd for c in calls),
            calls=len(calls),
            input_tokens=sum(c.input_tokens for c in calls),
            cached_input_tokens=sum(c.cached_input_tokens for c in calls),
            output_tokens=sum(c.output_tokens for c in calls),
            reasoning_tokens=sum(c.reasoning_tokens for c in calls),
        )

    @property
    def usd(self) -> Decimal:
        return Decimal(self.nano_usd) / NANO

    @property
    def tokens(self) -> int:
        """Input, output and reasoning tokens (cached input is counted apart)."""
        return self.input_tokens + self.output_tokens + self.reasoning_tokens


@dataclass(frozen=True)
class RunView:
    """A run as stored, read.

    ``load_run`` fills ``steps``, ``model_calls`` and ``approvals``; ``list_runs`` and
    ``load_run(..., history=False)`` leave them empty (``cost`` is always there).
    """

    id: str
    tenant: str
    workflow: str
    agent: str
    role: str
    requester: str
    mode: Mode
    """As it is now (a run may switch to safe mode)."""
    state: RunState
    reason: Reason | None
    reason_detail: str | None
    bundle_version: str
    """The policy bundle version the run opened under."""
    budget: BudgetCaps
    usage: Usage
    invalid_actions: int
    max_invalid_actions: int
    paused_s: float
    """Seconds spent awaiting approval."""
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    purged_at: datetime | None
    """When retention purged the run's payloads."""
    has_conversation: bool
    """Whether an agent drove the run (its conversation is kept, sealed)."""
    cost: RunCost
    session: str | None = None
    """The framework's conversation the run serves (a LangGraph thread, an MCP session)."""
    request: str | None = None
    """What the run was asked, redacted (``None`` when nobody noted it)."""
    answer: str | None = None
    """The final answer, redacted (``None`` until the run completes with one)."""
    origin: Origin = Origin.LIVE
    release: str | None = None
    """The release the run was opened under (None for a run before any release)."""
    steps: tuple[StepView, ...] = ()
    model_calls: tuple[ModelCallView, ...] = ()
    approvals: tuple[ApprovalView, ...] = ()

    @classmethod
    def from_row(
        cls,
        m: Mapping[str, Any],
        cost: RunCost,
        steps: Sequence[StepView] = (),
        model_calls: Sequence[ModelCallView] = (),
        approvals: Sequence[ApprovalView] = (),
    ) -> RunView:
        return cls(
            id=m["id"],
            tenant=m["tenant"],
            workflow=m["workflow"],
            agent=m["agent"],
            role=m["role"],
            requester=m["requester"],
            mode=Mode(m["mode"]),
            state=RunState(m["state"]),
            reason=Reason(m["reason"]) if m["reason"] else None,
            reason_detail=m["reason_detail"],
            bundle_version=m["bundle_version"],
            budget=BudgetCaps(**(m["budget"] or {})),
            usage=Usage.from_json(m["usage"] or {}),
            invalid_actions=int(m["invalid_actions"]),
            max_invalid_actions=int(m["max_invalid_actions"]),
            paused_s=float(m["paused_s"] or 0.0),
            created_at=m["created_at"],
            updated_at=m["updated_at"],
            ended_at=m["ended_at"],
            purged_at=m["purged_at"],
            has_conversation=bool(m["has_conversation"]),
            cost=cost,
            session=m.get("session"),
            request=m.get("request"),
            answer=m.get("answer"),
            origin=Origin(m.get("origin") or "live"),
            release=m.get("release"),
            steps=tuple(steps),
            model_calls=tuple(model_calls),
            approvals=tuple(approvals),
        )

    @property
    def spec(self) -> RunSpec:
        """The spec the run was opened with (its mode as it is now)."""
        return RunSpec(
            agent=self.agent,
            role=self.role,
            tenant=self.tenant,
            workflow=self.workflow,
            requester=self.requester,
            mode=self.mode,
            budget=self.budget,
            max_invalid_actions=self.max_invalid_actions,
            session=self.session,
            origin=self.origin,
        )

    def approval(self, approval_id: str | None) -> ApprovalView | None:
        """The run's approval request with this id, if any."""
        if approval_id is None:
            return None
        return next((a for a in self.approvals if a.request.id == approval_id), None)
