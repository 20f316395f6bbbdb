"""Persisted states and labels of runs, steps and approvals."""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    RUNNING = "running"
    AWAITING_APPROVAL = "awaiting_approval"
    COMPLETED = "completed"
    HANDED_OFF = "handed_off"
    FAILED_SAFE = "failed_safe"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({RunState.COMPLETED, RunState.HANDED_OFF, RunState.FAILED_SAFE})


class Reason(StrEnum):
    """Why a run ended (or handed off); every terminal state carries one."""

    # completed
    DONE = "done"
    # failed_safe
    BUDGET_EXCEEDED = "budget_exceeded"
    INVALID_ACTIONS = "invalid_actions"
    TOOL_ERROR = "tool_error"
    TIMEOUT = "timeout"
    MODEL_ERROR = "model_error"
    LOOP = "loop"
    # handed_off
    OUTCOME_UNKNOWN = "outcome_unknown"
    APPROVAL_EXPIRED = "approval_expired"
    POLICY_DENIED = "policy_denied"
    ESCALATED = "escalated"


class Mode(StrEnum):
    """How cautiously a run proceeds; visible to policy as ``context.run.mode``."""

    NORMAL = "normal"
    SAFE = "safe"


class StepStatus(StrEnum):
    DENIED = "denied"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVAL_DENIED = "approval_denied"
    APPROVAL_EXPIRED = "approval_expired"
    EXECUTING = "executing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    OUTCOME_UNKNOWN = "outcome_unknown"


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
