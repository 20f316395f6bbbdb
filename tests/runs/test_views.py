"""The read model reads every stored version of a run, and refuses one newer than it knows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from proctor.errors import RunNotFound, RunSchemaTooNew, StoreError
from proctor.policy import DecisionEffect
from proctor.runs.model import RUN_SCHEMA_VERSION
from proctor.runs.trace import run_spans
from proctor.runs.views import (
    RunFilter,
    StepError,
    StoredRun,
    count_runs,
    list_runs,
    load_run,
    runs_with_steps,
    steps_of,
    stored_rows,
)
from proctor.runs.views import versions as versions_module
from proctor.runs.views.aggregates import cost_by, cost_per_run, run_counts
from proctor.states import ApprovalStatus, Mode, Reason, RunState, StepStatus
from proctor.store import Store
from proctor.store.tables import approvals, model_calls, runs, steps

FIXTURES = Path(__file__).parent / "fixtures"
TABLES = (runs, steps, approvals, model_calls)


def _fixture(version: int) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = json.loads(
        (FIXTURES / f"run_v{version}.json").read_text()
    )
    return rows


def _as_stored(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    """Times parsed, and a missing JSON value as SQL NULL (as the runtime leaves it)."""
    found: dict[str, Any] = {}
    for name, value in row.items():
        column = table.c[name]
        if value is None:
            found[name] = sa.null()
        elif isinstance(column.type, sa.TypeDecorator):
            found[name] = datetime.fromisoformat(value)
        else:
            found[name] = value
    return found


def _insert(store: Store, rows: dict[str, list[dict[str, Any]]]) -> None:
    with store.write() as conn:
        for table in TABLES:
            for row in rows[table.name]:
                conn.execute(table.insert().values(_as_stored(table, row)))


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    yield s
    s.close()


def test_there_is_a_fixture_of_every_version() -> None:
    assert sorted(p.name for p in FIXTURES.glob("run_v*.json")) == [
        f"run_v{v}.json" for v in range(1, RUN_SCHEMA_VERSION + 1)
    ]


def test_the_newest_fixture_has_every_column_stored_today() -> None:
    """A new column is a new schema version: raise it, and write a fixture of it."""
    rows = _fixture(RUN_SCHEMA_VERSION)
    for table in TABLES:
        assert rows[table.name], table.name
        for row in rows[table.name]:
            assert set(row) == {c.name for c in table.c}, table.name


@pytest.mark.parametrize("version", range(1, RUN_SCHEMA_VERSION + 1))
def test_each_stored_version_reads(store: Store, version: int) -> None:
    rows = _fixture(version)
    _insert(store, rows)
    run_id = rows["runs"][0]["id"]
    with store.read() as conn:
        run = load_run(conn, run_id)
        listed = list_runs(conn)
        with_steps = runs_with_steps(conn)
    assert run.state is RunState.COMPLETED
    assert run.reason is Reason.DONE
    assert run.mode is Mode.NORMAL
    assert (run.tenant, run.workflow, run.agent, run.requester) == (
        "acme",
        "support",
        "support-bot",
        "ann",
    )
    assert run.spec.role == "agent"
    assert run.usage.tool_calls == 3
    assert not run.has_conversation
    assert [s.status for s in run.steps] == [
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
        StepStatus.SUCCEEDED,
    ]
    lookup, stock, refund = run.steps
    assert lookup.decision is not None
    assert lookup.decision.effect is DecisionEffect.ALLOW
    assert lookup.reason == "the customer asked"
    assert lookup.error is None
    assert stock.error == StepError(
        kind="error", type="RuntimeError", message="warehouse timed out looking up SKU-9"
    )
    assert refund.decision is not None
    assert refund.decision.effect is DecisionEffect.REQUIRE_APPROVAL
    assert refund.decision.approval_roles == ("supervisor",)
    approval = run.approval(refund.approval_id)
    assert approval is not None
    assert approval.request.status is ApprovalStatus.APPROVED
    assert approval.request.decided_by == "sam"
    assert approval.wait is not None
    assert approval.wait.total_seconds() == 60
    [call] = run.model_calls
    assert call.model == "openai:gpt-4o-mini"
    assert run.cost.calls == 1
    assert run.cost.usd == call.cost_usd > Decimal(0)
    assert run.cost.tokens == call.tokens
    # Listing reads the same run, with its cost from one grouped query.
    [summary] = listed
    assert summary.cost == run.cost
    assert summary.steps == ()
    assert [s.idx for s in with_steps[0].steps] == [0, 1, 2]
    # Its span tree derives from it as it is.
    spans = run_spans(run)
    assert spans[0].key == "run"
    assert spans[0].end is not None
    assert {s.key for s in spans} >= {"step/1", "step/2/approval", f"model/{call.id}"}
    assert next(s for s in spans if s.key == "step/1").error == "error"


def test_a_run_newer_than_this_proctor_is_refused(store: Store) -> None:
    rows = _fixture(RUN_SCHEMA_VERSION)
    rows["runs"][0]["schema_version"] = RUN_SCHEMA_VERSION + 1
    _insert(store, rows)
    run_id = rows["runs"][0]["id"]
    with store.read() as conn:
        with pytest.raises(RunSchemaTooNew) as caught:
            load_run(conn, run_id)
        with pytest.raises(RunSchemaTooNew):
            list_runs(conn)
        with pytest.raises(RunSchemaTooNew):
            steps_of(conn, run_id)
    assert isinstance(caught.value, StoreError)
    message = str(caught.value)
    assert run_id in message
    assert f"version {RUN_SCHEMA_VERSION + 1}" in message
    assert "upgrade proctor" in message


def test_an_older_version_is_upgraded_on_read(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upgrade chain runs for a version below the current one (made up here)."""
    rows = _fixture(RUN_SCHEMA_VERSION)
    rows["runs"][0]["schema_version"] = RUN_SCHEMA_VERSION - 1
    _insert(store, rows)

    def upgrade(stored: StoredRun) -> StoredRun:
        for step in stored.steps:
            step["idempotency_key"] = "upgraded:" + step["idempotency_key"]
        return stored

    chain = {v: (lambda s: s) for v in range(1, RUN_SCHEMA_VERSION - 1)}
    monkeypatch.setattr(versions_module, "UPGRADES", chain | {RUN_SCHEMA_VERSION - 1: upgrade})
    with store.read() as conn:
        run = load_run(conn, rows["runs"][0]["id"])
    assert all(s.idempotency_key.startswith("upgraded:") for s in run.steps)


def test_a_version_no_proctor_wrote_is_refused(store: Store) -> None:
    rows = _fixture(RUN_SCHEMA_VERSION)
    rows["runs"][0]["schema_version"] = 0
    _insert(store, rows)
    with store.read() as conn, pytest.raises(StoreError, match="schema version 0"):
        load_run(conn, rows["runs"][0]["id"])


def test_filters_counts_and_aggregates(store: Store) -> None:
    rows = _fixture(RUN_SCHEMA_VERSION)
    _insert(store, rows)
    run_id = rows["runs"][0]["id"]
    with store.read() as conn:
        assert count_runs(conn) == 1
        assert count_runs(conn, RunFilter(tenant="other")) == 0
        assert count_runs(conn, RunFilter(state=RunState.COMPLETED, reason=Reason.DONE)) == 1
        assert count_runs(conn, RunFilter(cost_above=Decimal(1000))) == 0
        assert count_runs(conn, RunFilter(cost_above=Decimal(0))) == 1
        created = datetime.fromisoformat(rows["runs"][0]["created_at"])
        assert count_runs(conn, RunFilter(since=created.replace(tzinfo=None))) == 1
        assert count_runs(conn, RunFilter(until=created)) == 0
        assert count_runs(conn, RunFilter(alive_since=datetime(2100, 1, 1))) == 0
        [group] = cost_by(conn)
        [spend] = cost_per_run(conn)
        [counted] = run_counts(conn)
        kept = stored_rows(conn, run_id)
        with pytest.raises(RunNotFound):
            load_run(conn, "run_missing")
    assert (group.tenant, group.calls) == ("acme", 1)
    assert spend.run_id == run_id
    assert spend.nano_usd == group.nano_usd
    assert counted.state is RunState.COMPLETED
    assert counted.reason is Reason.DONE
    assert len(kept.steps) == 3
    assert "sealed_args" in kept.steps[0]
