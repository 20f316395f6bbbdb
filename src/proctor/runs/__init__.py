"""Runs: lifecycle, the step journal, the governed call, pause and resume, idempotency."""

from proctor.runs.gate import Proposal
from proctor.runs.model import CallOutcome, CallStatus, RunSpec, StepRecord, Usage
from proctor.runs.run import Run

__all__ = ["CallOutcome", "CallStatus", "Proposal", "Run", "RunSpec", "StepRecord", "Usage"]
