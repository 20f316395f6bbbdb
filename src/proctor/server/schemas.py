"""What the API answers, as pydantic models: they are its OpenAPI schema."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from proctor.approvals import ApprovalRequest
from proctor.states import ApprovalStatus, Reason, RunState, StepStatus

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """Every list the API answers: one page of items, and how to ask for the next."""

    items: list[T]
    next: str | None = None
    """The cursor of the next page (send it as ``?cursor=``), or None on the last page."""


class RunSummary(BaseModel):
    id: str
    tenant: str
    workflow: str
    agent: str
    requester: str
    state: RunState
    reason: Reason | None
    bundle_version: str
    release: str | None = None
    """The release the run was opened under."""
    tool_calls: int
    cost_usd: Decimal
    """The sum of the run's model calls."""
    created_at: datetime
    ended_at: datetime | None


class RunPage(BaseModel):
    items: list[RunSummary]
    total: int
    limit: int
    offset: int


class StepOut(BaseModel):
    idx: int
    tool: str
    status: StepStatus
    effect: str | None
    """The policy decision's effect."""
    policy_ids: list[str]
    decision: dict[str, Any]
    approval_id: str | None
    args: dict[str, Any]
    result: Any = None
    error: dict[str, Any] | None = None


class ApprovalOut(BaseModel):
    id: str
    run_id: str
    step: int
    tenant: str
    tool: str
    roles: list[str]
    """The policy roles that may decide it."""
    policy_ids: list[str]
    requester: str
    agent: str
    status: ApprovalStatus
    created_at: datetime
    expires_at: datetime
    decided_by: str | None
    decider_role: str | None
    decision_reason: str | None

    @classmethod
    def of(cls, r: ApprovalRequest) -> ApprovalOut:
        return cls(
            id=r.id,
            run_id=r.run_id,
            step=r.step,
            tenant=r.tenant,
            tool=r.tool,
            roles=list(r.roles),
            policy_ids=list(r.policy_ids),
            requester=r.requester,
            agent=r.agent,
            status=r.status,
            created_at=r.created_at,
            expires_at=r.expires_at,
            decided_by=r.decided_by,
            decider_role=r.decider_role,
            decision_reason=r.decision_reason,
        )


class ModelCallOut(BaseModel):
    model: str
    answered_by: str
    input_tokens: int
    cached_input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal
    latency_ms: float
    created_at: datetime


class UsageOut(BaseModel):
    tool_calls: int
    model_tokens: int
    usd: Decimal


class RunDetail(BaseModel):
    run: RunSummary
    usage: UsageOut
    steps: list[StepOut]
    approvals: list[ApprovalOut]
    model_calls: list[ModelCallOut]
    tokens: int
    """Every token the run's model calls used: input, output and reasoning."""
    cost_usd: Decimal
    spans: list[dict[str, Any]] = []
    """The run's span tree as telemetry exports it (a span still open has no ``end``)."""


class Decide(BaseModel):
    reason: str = Field(min_length=1, description="Why; it goes into the audit log.")
    role: str | None = Field(
        default=None,
        description="The policy role you decide in; needed only when the request names several.",
    )


class DecisionResult(BaseModel):
    approval: ApprovalOut
    run_id: str
    resumed: bool
    """Whether this server resumed the run (it does only when started with the app's tools)."""
    run_state: RunState
    message: str


class CostRow(BaseModel):
    tenant: str
    workflow: str
    model: str
    day: str
    calls: int
    tokens: int
    cost_usd: Decimal


class CostlyRun(BaseModel):
    run_id: str
    tenant: str
    workflow: str
    tokens: int
    cost_usd: Decimal


class CostOutlier(BaseModel):
    run_id: str
    tenant: str
    workflow: str
    cost_usd: Decimal
    median_usd: Decimal
    """The median cost of a run of its workflow."""
    score: float
    """The modified z-score (median and median absolute deviation); above 3.5 is an outlier."""


class CostPage(Page[CostRow]):
    """Cost rows a page at a time, with the figures over all of them."""

    top_runs: list[CostlyRun]
    outliers: list[CostOutlier] = []
    total_usd: Decimal


class Costs(BaseModel):
    rows: list[CostRow]
    top_runs: list[CostlyRun]
    outliers: list[CostOutlier] = []
    """Runs that cost far more than the other runs of their workflow."""
    total_usd: Decimal


class AuditProblem(BaseModel):
    tenant: str
    seq: int
    entry_id: str | None
    tamper: str
    detail: str


class AuditStatus(BaseModel):
    ok: bool
    checked: int
    tenants: int
    checkpoints: int
    problems: list[AuditProblem]


class Health(BaseModel):
    status: str
    store: str


class EvalReportInfo(BaseModel):
    name: str
    """Use it in ``/api/v1/evals/{name}``."""
    modified: datetime
    has_html: bool
