"""Runs: lifecycle, the step journal, pause and resume, idempotency."""

from proctor.runs.model import (
    ActionDenied,
    ApprovalPending,
    CallOutcome,
    CallStatus,
    RunSpec,
    StepRecord,
    ToolFailed,
    Usage,
)
from proctor.runs.run import Run

__all__ = [
    "ActionDenied",
    "ApprovalPending",
    "CallOutcome",
    "CallStatus",
    "Run",
    "RunSpec",
    "StepRecord",
    "ToolFailed",
    "Usage",
]
