"""Runs: lifecycle, the step journal, the governed call, pause and resume, idempotency."""

from proctor.runs.model import CallOutcome, CallStatus, Origin, RunSpec, StepRecord, Usage
from proctor.runs.plans import PlannedCall
from proctor.runs.run import Run
from proctor.runs.steps import Proposal

__all__ = [
    "CallOutcome",
    "CallStatus",
    "Origin",
    "PlannedCall",
    "Proposal",
    "Run",
    "RunSpec",
    "StepRecord",
    "Usage",
]
