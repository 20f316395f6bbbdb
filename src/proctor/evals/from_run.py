"""A scenario from a stored run: what happened, written down as expectations to edit.

    request = request_of(rt.sealer, conn, run_id)   # the request is sealed with the run
    scenario = scenario_from_run(conn, run_id, request=request)
    Path("bank/from_runs.yaml").write_text(scenario_yaml(scenario))

The expectations are the *observed* outcome (state, reason, the executed calls),
not a judgement of it: a person edits them into what should have happened.
Masked (sensitive) argument values become ``"*"``, which matches any value.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
import yaml
from pydantic import ValidationError

from proctor.errors import ConfigError
from proctor.evals.scenario import SCENARIO_FORMAT_VERSION, Scenario
from proctor.models.messages import MESSAGES, UserMessage
from proctor.redaction import MASK
from proctor.runs.views import load_run, stored_conversation
from proctor.sealing import Sealer
from proctor.states import StepStatus

MISSING_REQUEST = "(the request was not recorded with the run: write it here)"
HEADER = "# observed outcome: edit the expectations into what should happen.\n"


def request_of(sealer: Sealer, conn: sa.Connection, run_id: str) -> str | None:
    """The agent's request, from the run's sealed conversation; ``None`` when there is none."""
    stored = stored_conversation(conn, run_id)
    if not stored or "sealed" not in stored:
        return None
    conversation = MESSAGES.validate_python(sealer.open(stored["sealed"]))
    return next((m.content for m in conversation if isinstance(m, UserMessage)), None)


def scenario_id_for(run_id: str) -> str:
    """A valid scenario id from a run id: lower case, other characters as ``-``."""
    return "from-" + re.sub(r"[^a-z0-9_.-]+", "-", run_id.lower()).strip("-")


def _unmasked(args: dict[str, Any]) -> dict[str, Any]:
    return {k: "*" if v == MASK else v for k, v in args.items()}


def scenario_from_run(conn: sa.Connection, run_id: str, *, request: str | None) -> dict[str, Any]:
    """The run as a scenario (a dict in the bank format), its observed outcome as expectations.

    Raises ``RunNotFound`` for an unknown run.
    """
    record = load_run(conn, run_id)
    executed = [s for s in record.steps if s.status is StepStatus.SUCCEEDED]
    approved = any(s.approval_id for s in executed)
    denied = any(s.status is StepStatus.APPROVAL_DENIED for s in record.steps)
    expect: dict[str, Any] = {"state": record.state.value}
    if record.reason:
        expect["reason"] = record.reason.value
    expect["must"] = [{"tool": s.tool, "args": _unmasked(dict(s.args))} for s in executed]
    expect["must_not"] = []
    expect["escalation"] = any(s.approval_id for s in record.steps)
    scenario: dict[str, Any] = {
        "id": scenario_id_for(run_id),
        "labels": ["from_run", record.workflow],
        "request": request or MISSING_REQUEST,
        "tenant": record.tenant,
        "requester": record.requester,
    }
    if denied or approved:
        scenario["approver"] = {"decision": "deny" if denied else "approve"}
    scenario["expect"] = expect
    try:
        Scenario.model_validate(scenario)
    except ValidationError as exc:  # a run proctor stored always fits; say so if not
        raise ConfigError(f"run {run_id} does not make a valid scenario: {exc}") from None
    return scenario


def scenario_yaml(
    scenario: dict[str, Any], *, run_id: str | None = None, suite: str = "from_runs"
) -> str:
    """A bank file holding the scenario, with a header saying the expectations are observed."""
    bank = {"version": SCENARIO_FORMAT_VERSION, "suite": suite, "scenarios": [scenario]}
    source = f"# from run {run_id}\n" if run_id else ""
    body = yaml.safe_dump(bank, sort_keys=False, allow_unicode=True)
    return HEADER + source + body
