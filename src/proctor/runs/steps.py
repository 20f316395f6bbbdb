"""A step as one typed event: the journal row and the audit entry are built from it.

``NewStep`` is a proposed call, decided and redacted for storage once; the
step row, the in-memory record and the audit payload of its denial, approval
request or intent all read from it, so they can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from proctor.approvals import ApprovalRequest
from proctor.audit.events import ActionApprovalRequested, ActionDenial, ActionIntent
from proctor.ids import idempotency_key
from proctor.policy import Decision
from proctor.redaction.policy import Redaction
from proctor.runs.model import RunRecord, StepRecord
from proctor.sealing import Sealer
from proctor.states import STEP_STARTS, ApprovalStatus, StepStatus
from proctor.tools import Tool


@dataclass(frozen=True)
class Proposal:
    """A call that fits its tool: the typed arguments, and their JSON form and hash."""

    tool: Tool
    parsed: BaseModel
    args: dict[str, Any]
    args_hash: str


@dataclass(frozen=True)
class NewStep:
    """A proposed call as the journal and the audit log both record it, redacted once."""

    run_id: str
    idx: int
    tool: Tool
    args: dict[str, Any]
    """As stored: the tenant's redaction, with the tool's sensitive fields."""
    sealed_args: str | None
    """The whole arguments, sealed, where redaction changed them."""
    args_hash: str
    reason: str | None
    """The proposer's stated reason, redacted."""
    decision: Decision
    call_id: str | None = None
    """The caller's own id for the call, which replays it when proposed again."""

    @classmethod
    def of(
        cls,
        run: RunRecord,
        proposal: Proposal,
        decision: Decision,
        reason: str | None,
        redaction: Redaction,
        sealer: Sealer,
        call_id: str | None = None,
    ) -> NewStep:
        """The next step of ``run``, redacted for storage once: the arguments with the
        tool's sensitive fields declared, the stated reason as text, what the decision was
        made on (resource attributes may name people)."""
        tenant = run.spec.tenant
        stored = redaction.value(tenant, proposal.args, proposal.tool.sensitive)
        if decision.inputs is not None:
            decision = replace(
                decision, inputs=_redacted_inputs(redaction, tenant, decision.inputs)
            )
        return cls(
            run_id=run.id,
            idx=len(run.steps),
            tool=proposal.tool,
            args=stored,
            sealed_args=None if stored == proposal.args else sealer.seal(proposal.args),
            args_hash=proposal.args_hash,
            reason=None if reason is None else redaction.text(tenant, reason),
            decision=decision,
            call_id=call_id,
        )

    @property
    def idempotency_key(self) -> str:
        return idempotency_key(self.run_id, self.idx)

    def record(self, status: StepStatus, approval_id: str | None = None) -> StepRecord:
        """The step as the live run remembers it, first written with ``status``."""
        assert status in STEP_STARTS, f"a step does not start {status}"
        return StepRecord(
            idx=self.idx,
            tool=self.tool.name,
            args=self.args,
            args_hash=self.args_hash,
            status=status,
            decision=self.decision,
            idempotency_key=self.idempotency_key,
            approval_id=approval_id,
            call_id=self.call_id,
        )

    def row(self, record: StepRecord, now: datetime) -> dict[str, Any]:
        """The journal row."""
        return {
            "run_id": self.run_id,
            "idx": self.idx,
            "tool": self.tool.name,
            "args": self.args,
            "args_hash": self.args_hash,
            # A denied call never runs: nothing needs its whole arguments.
            "sealed_args": None if record.status is StepStatus.DENIED else self.sealed_args,
            "sealed_result": None,
            "reason": self.reason,
            "status": record.status.value,
            "decision": self.decision.to_json(),
            "idempotency_key": record.idempotency_key,
            "approval_id": record.approval_id,
            "result": None,
            "error": None,
            "attempts": 0,
            "timings_us": {},
            "created_at": now,
            "finished_at": None,
            "call_id": self.call_id,
        }

    def pending_request(
        self, run: RunRecord, approval_id: str, now: datetime, expires_at: datetime
    ) -> ApprovalRequest:
        """The approval request this step waits on."""
        return ApprovalRequest(
            id=approval_id,
            run_id=run.id,
            step=self.idx,
            tenant=run.spec.tenant,
            tool=self.tool.name,
            roles=self.decision.approval_roles,
            policy_ids=self.decision.policy_ids,
            requester=run.spec.requester,
            agent=run.spec.agent,
            status=ApprovalStatus.PENDING,
            created_at=now,
            expires_at=expires_at,
        )

    def denial(self) -> ActionDenial:
        return ActionDenial(self.tool.name, self.args, self.reason, self.decision.to_json())

    def approval_request(self, approval_id: str, expires_at: datetime) -> ActionApprovalRequested:
        return ActionApprovalRequested(
            self.tool.name,
            self.args,
            self.reason,
            self.decision.to_json(),
            approval_id,
            list(self.decision.approval_roles),
            expires_at.isoformat(),
        )

    def intent(self) -> ActionIntent:
        return ActionIntent(
            self.tool.name,
            self.args,
            self.reason,
            self.decision.to_json(),
            self.idempotency_key,
            None,
            sorted(self.tool.scopes),
        )


def approved_intent(record: StepRecord, tool: Tool) -> ActionIntent:
    """The intent of a step that waited for approval and now runs."""
    return ActionIntent(
        tool.name,
        record.args,
        None,
        record.decision.to_json(),
        record.idempotency_key,
        record.approval_id,
        sorted(tool.scopes),
    )


@dataclass(frozen=True)
class Outcome:
    """What a call did, as the tool (or its system of record) told it."""

    status: StepStatus
    result: Any = None
    """As the tool returned it."""
    error: dict[str, Any] | None = None
    attempts: int = 0


def _redacted_inputs(redaction: Redaction, tenant: str, inputs: Any) -> dict[str, Any]:
    """What a decision was made on, as stored: what may name people redacted (the
    resource, the run's people and facts); its counts and sums, keyed by tool names, and
    the context's verdicts and flags need no redaction and are most of it."""
    out = dict(inputs)
    if out.get("resource") is not None:
        out["resource"] = redaction.value(tenant, out["resource"])
    run = out.get("run")
    if run:
        counted = {k: run[k] for k in _COUNTED if k in run}
        people = {k: v for k, v in run.items() if k not in _COUNTED}
        out["run"] = {**redaction.value(tenant, people), **counted}
    return out


_COUNTED = ("calls", "calls_by_tool", "totals", "tainted")
