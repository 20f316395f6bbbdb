"""The read model: runs as stored, read into typed values.

Everything outside the runs package that reads a run (the service, the CLI, evals,
evidence, span derivation) reads it here: ``load_run``, ``list_runs``, ``steps_of``…
Each row is parsed in one place (its view's ``from_row``), after its schema version
is checked (``versions``). Aggregates over many runs (costs, the ``/metrics`` figures)
are named queries in ``aggregates``.
"""

from proctor.runs.views.reads import (
    RunFilter,
    StoredRows,
    approvals_between,
    approvals_of,
    count_runs,
    list_runs,
    load_run,
    run_tenant,
    run_tenants,
    runs_with_steps,
    steps_of,
    stored_conversation,
    stored_rows,
    utc,
)
from proctor.runs.views.short_ids import AmbiguousId, resolve_id, short_ids
from proctor.runs.views.values import (
    ApprovalView,
    ModelCallView,
    RunCost,
    RunView,
    StepError,
    StepView,
)
from proctor.runs.views.versions import StoredRun

__all__ = [
    "AmbiguousId",
    "ApprovalView",
    "ModelCallView",
    "RunCost",
    "RunFilter",
    "RunView",
    "StepError",
    "StepView",
    "StoredRows",
    "StoredRun",
    "approvals_between",
    "approvals_of",
    "count_runs",
    "list_runs",
    "load_run",
    "resolve_id",
    "run_tenant",
    "run_tenants",
    "runs_with_steps",
    "short_ids",
    "steps_of",
    "stored_conversation",
    "stored_rows",
    "utc",
]
