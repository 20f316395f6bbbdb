"""What a run is: its spec, its usage, its steps and the outcome of each call."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from proctor.budgets import BudgetCaps
from proctor.errors import ActionDenied, ApprovalPending, ToolFailed
from proctor.policy import Decision
from proctor.states import Mode, Reason, RunState, StepStatus

RUN_SCHEMA_VERSION = 5


class Origin(StrEnum):
    """Where a run came from. Eval and demo runs stay out of the live approval queue."""

    LIVE = "live"
    EVAL = "eval"
    DEMO = "demo"


class RunSpec(BaseModel):
    """Who runs, for whom, under which caps. Validated when a run opens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str = Field(min_length=1)
    """The agent's identity: the policy principal. It can never approve its own calls."""
    role: str = Field(min_length=1)
    """The agent's role, as policies name it (``principal in Role::"..."``)."""
    tenant: str = Field(min_length=1)
    workflow: str = Field(min_length=1)
    requester: str = Field(min_length=1)
    """Who asked for the run; they can never approve its calls."""
    mode: Mode = Mode.NORMAL
    budget: BudgetCaps = BudgetCaps()
    max_invalid_actions: int = Field(default=2, ge=0)
    """Invalid proposals tolerated (each may be repaired); one more ends the run failed_safe."""
    session: str | None = Field(default=None, min_length=1, max_length=256)
    """The conversation the run serves, in the words of the framework that drives it (a
    LangGraph thread, an MCP session): one live run per tenant and session."""
    origin: Origin = Origin.LIVE
    """Live traffic, an eval or the demo: the pages keep the last two out of the live
    approval queue unless asked."""


@dataclass
class Usage:
    """What a run has consumed so far."""

    tool_calls: int = 0
    model_tokens: int = 0
    usd: Decimal = Decimal(0)

    def to_json(self) -> dict[str, Any]:
        return {
            "tool_calls": self.tool_calls,
            "model_tokens": self.model_tokens,
            "usd": str(self.usd),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Usage:
        return cls(
            int(data.get("tool_calls", 0)),
            int(data.get("model_tokens", 0)),
            Decimal(str(data.get("usd", "0"))),
        )


class CallStatus(StrEnum):
    EXECUTED = "executed"
    DENIED = "denied"
    AWAITING_APPROVAL = "awaiting_approval"
    FAILED = "failed"
    OUTCOME_UNKNOWN = "outcome_unknown"


@dataclass(frozen=True)
class CallOutcome:
    """What became of one governed call. A value: inspect ``status`` or ``unwrap()``."""

    run_id: str
    step: int
    tool: str
    status: CallStatus
    decision: Decision | None
    result: Any = None
    error: dict[str, Any] | None = None
    approval_id: str | None = None
    replayed: bool = False
    """True when the journal answered and nothing ran again."""

    def unwrap(self) -> Any:
        """The tool's result, or the matching exception."""
        if self.status is CallStatus.EXECUTED:
            return self.result
        where = f"{self.tool} (run {self.run_id}, step {self.step})"
        if self.status is CallStatus.DENIED:
            why = self.decision.reason if self.decision else "denied"
            raise ActionDenied(f"{where} was denied: {why}")
        if self.status is CallStatus.AWAITING_APPROVAL:
            raise ApprovalPending(f"{where} awaits approval {self.approval_id}")
        detail = (self.error or {}).get("message", self.status.value)
        raise ToolFailed(f"{where} failed: {detail}")


@dataclass
class StepRecord:
    """One journaled step, as the run remembers it for replay and recovery."""

    idx: int
    tool: str
    args: dict[str, Any]
    args_hash: str
    status: StepStatus
    decision: Decision
    idempotency_key: str
    approval_id: str | None = None
    result: Any = None
    """The result as stored: redacted."""
    error: dict[str, Any] | None = None
    sealed_result: str | None = field(default=None, repr=False)
    """The whole result, sealed, while the run is live and redaction changed it."""
    call_id: str | None = None
    """The caller's own id for the call (a framework's tool call id), if it gave one."""


@dataclass
class RunRecord:
    """A run as stored; ``Run`` is the live handle around it."""

    id: str
    spec: RunSpec
    state: RunState
    reason: Reason | None
    bundle_version: str
    created_at: datetime
    paused_s: float
    invalid_actions: int
    usage: Usage
    steps: list[StepRecord] = field(default_factory=list)
    release: str | None = None
    """The release the run was opened under; its bundle decides the run to its end."""
    lease_generation: int | None = None
    """The lease generation this worker holds the run under, the fencing token of its
    writes; None while it does not hold the run."""
    lease_until: datetime | None = None
    """When this worker's lease lapses, unless renewed."""
    lease_lost: bool = False
    """Another worker took the run over from this one: it writes nothing more."""
