"""Runs: lifecycle, the step journal, the governed call, pause and resume, idempotency."""

from proctor.runs.model import CallOutcome, CallStatus, RunSpec, StepRecord, Usage
from proctor.runs.run import Run

__all__ = ["CallOutcome", "CallStatus", "Run", "RunSpec", "StepRecord", "Usage"]
