"""Persisted states and labels of runs, steps and approvals, and the moves allowed between them.

The recorder writes every change of a run's state or a step's status and refuses
any move these tables do not list: a terminal run never changes again, and a
step that has an outcome never gets another.
"""

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


class TransitionError(Exception):
    """A state change the tables below do not allow: a bug, never a user's error."""


RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.RUNNING: frozenset({RunState.AWAITING_APPROVAL, *TERMINAL_STATES}),
    # Decided: running again. Expired, or ended by its code while it waited: terminal.
    RunState.AWAITING_APPROVAL: frozenset({RunState.RUNNING, *TERMINAL_STATES}),
    RunState.COMPLETED: frozenset(),
    RunState.HANDED_OFF: frozenset(),
    RunState.FAILED_SAFE: frozenset(),
}

STEP_TRANSITIONS: dict[StepStatus, frozenset[StepStatus]] = {
    StepStatus.AWAITING_APPROVAL: frozenset(
        {StepStatus.EXECUTING, StepStatus.APPROVAL_DENIED, StepStatus.APPROVAL_EXPIRED}
    ),
    # Executing again: a crashed worker's step, settled by the next one.
    StepStatus.EXECUTING: frozenset(
        {
            StepStatus.EXECUTING,
            StepStatus.SUCCEEDED,
            StepStatus.FAILED,
            StepStatus.OUTCOME_UNKNOWN,
        }
    ),
    StepStatus.DENIED: frozenset(),
    StepStatus.APPROVAL_DENIED: frozenset(),
    StepStatus.APPROVAL_EXPIRED: frozenset(),
    StepStatus.SUCCEEDED: frozenset(),
    StepStatus.FAILED: frozenset(),
    StepStatus.OUTCOME_UNKNOWN: frozenset(),
}

STEP_STARTS = frozenset({StepStatus.DENIED, StepStatus.AWAITING_APPROVAL, StepStatus.EXECUTING})
"""The statuses a step is first written with."""


def check_run_move(previous: RunState, state: RunState) -> None:
    if state not in RUN_TRANSITIONS[previous]:
        raise TransitionError(f"a run cannot move from {previous} to {state}")


def check_step_move(previous: StepStatus, status: StepStatus) -> None:
    if status not in STEP_TRANSITIONS[previous]:
        raise TransitionError(f"a step cannot move from {previous} to {status}")
