"""Running a bank: fresh worlds, approvers, determinism for a seed, repeats and flaky scenarios."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from proctor import __version__
from proctor.errors import ConfigError
from proctor.evals.bank import Bank, load_bank
from proctor.evals.report import Report
from proctor.evals.runner import run_bank
from proctor.evals.scenario import Scenario
from proctor.examples.support import SYSTEM_PROMPT, Fixture, World, support_app
from proctor.examples.support.suite import apply_fixtures

APP = support_app(World(Path("never-opened.db")))

SMALL = """\
suite: support
scenarios:
  - id: small-refund
    labels: [refund]
    request: "Please refund $30 on order A-1001, it arrived broken"
    expect:
      state: completed
      must: [{tool: issue_refund, args: {order_id: A-1001, amount: 30}}]
      world: [{table: refunds, count: 1}]
  - id: big-refund-approved
    labels: [refund, escalation]
    request: "Refund $520 on order A-1002, the customer sent it back"
    approver: {decision: approve}
    expect:
      state: completed
      must: [{tool: issue_refund, args: {order_id: A-1002, amount: 520}}]
      escalation: true
  - id: faulty-status
    labels: [order_status, "fault:malformed_json"]
    request: "Where is order A-1020?"
    model: {seed: 3, faults: {malformed_json: 0.5, invent_id: 0.3}}
    expect:
      state: [completed, failed_safe, handed_off]
"""

FLAKY = """\
suite: support
scenarios:
  - id: sometimes-invented
    labels: [refund, "fault:invent_id"]
    request: "Please refund $30 on order A-1001, it arrived broken"
    model: {faults: {invent_id: 0.5}}
    expect:
      state: completed
      must: [{tool: issue_refund, args: {order_id: A-1001}}]
"""


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    def monotonic(self) -> float:
        return 0.0


def bank(tmp_path: Path, text: str) -> Bank:
    path = tmp_path / "bank.yaml"
    path.write_text(text)
    return load_bank(path)


def run(b: Bank, out: Path, **kw: object) -> Report:
    return asyncio.run(run_bank(b, app=APP, out_dir=out, progress=False, **kw))  # type: ignore[arg-type]


def comparable(report: Report) -> list[tuple[object, ...]]:
    return [
        (
            r.scenario_id,
            r.repeat,
            r.passed,
            r.state,
            r.reason,
            r.cost_usd,
            r.tokens,
            r.steps,
            r.model_calls,
            r.escalated,
            tuple(r.failures),
            tuple(i.kind for i in r.incidents),
        )
        for r in report.results
    ]


def test_the_same_seed_gives_the_same_results(tmp_path: Path) -> None:
    b = bank(tmp_path, SMALL)
    first = run(b, tmp_path / "one", concurrency=3)
    second = run(b, tmp_path / "two", concurrency=1)
    assert comparable(first) == comparable(second)
    assert [r.scenario_id for r in first.results] == [s.id for s in b.scenarios]
    assert first.results[0].run_id != second.results[0].run_id
    assert first.summary.runs == 3
    assert first.results[0].passed
    assert first.results[1].passed
    assert first.results[1].escalated


def test_the_report_is_written_with_its_manifest(tmp_path: Path) -> None:
    b = bank(tmp_path, SMALL)
    out = tmp_path / "out"
    report = run(b, out, seed_offset=7, clock=FixedClock())
    assert Report.model_validate(json.loads((out / "report.json").read_text())) == report
    m = report.manifest
    assert m.proctor_version == __version__
    assert m.policy_version.startswith("support-v1@")
    assert m.model_ids == ["simulated:cheap", "simulated:strong"]
    assert len(m.prompt_hash) == 64
    assert len(m.tool_schema_hash) == 64
    assert m.bank_hash == b.digest
    assert (m.seed, m.repeats, m.created_at) == (7, 1, "2026-01-02T03:04:05+00:00")
    assert (out / "proctor.db").exists()
    assert (out / "audit-key.pem").exists()
    assert len(list((out / "worlds").glob("*.db"))) == 3
    again = run(b, tmp_path / "again", seed_offset=7, clock=FixedClock())
    assert (again.manifest.prompt_hash, again.manifest.tool_schema_hash) == (
        m.prompt_hash,
        m.tool_schema_hash,
    )
    import hashlib

    assert m.prompt_hash == hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest()


def test_repeats_vary_the_seed_and_flaky_scenarios_are_named(tmp_path: Path) -> None:
    b = bank(tmp_path, FLAKY)
    report = run(b, tmp_path / "out", repeats=6)
    assert [r.repeat for r in report.results] == list(range(6))
    outcomes = {r.passed for r in report.results}
    assert outcomes == {True, False}
    assert report.summary.flaky_scenarios == ["sometimes-invented"]
    assert report.manifest.repeats == 6
    assert report.summary.by_label["fault:invent_id"].runs == 6
    again = run(b, tmp_path / "again", repeats=6)
    assert comparable(again) == comparable(report)


def test_fixture_overrides_change_and_add_rows() -> None:
    s = Scenario.model_validate(
        {
            "id": "o",
            "labels": ["refund"],
            "request": "r",
            "fixtures": {
                "orders": [
                    {"id": "A-1003", "status": "delivered"},
                    {
                        "id": "A-2001",
                        "customer_id": "c-101",
                        "total": "5.00",
                        "status": "delivered",
                        "placed": "2024-01-01",
                    },
                ],
                "customers": [{"id": "c-104", "email_changed_recently": False}],
            },
            "expect": {"state": "completed"},
        }
    )
    base = Fixture.load()
    changed = apply_fixtures(base, s)
    orders = {o.id: o for o in changed.orders}
    assert orders["A-1003"].status.value == "delivered"
    assert orders["A-2001"].total == 5
    assert not {c.id: c for c in changed.customers}["c-104"].email_changed_recently
    assert {o.id: o for o in base.orders}["A-1003"].status.value == "processing"


def test_a_bad_fixture_override_names_the_scenario() -> None:
    s = Scenario.model_validate(
        {
            "id": "bad-override",
            "labels": ["refund"],
            "request": "r",
            "fixtures": {"orders": [{"id": "A-1001", "customer_id": "c-999"}]},
            "expect": {"state": "completed"},
        }
    )
    with pytest.raises(ConfigError, match="scenario 'bad-override', field fixtures"):
        apply_fixtures(Fixture.load(), s)


def test_a_bad_fixture_override_stops_the_eval_before_any_run(tmp_path: Path) -> None:
    text = SMALL.replace(
        "    approver: {decision: approve}",
        "    approver: {decision: approve}\n    fixtures: {orders: [{id: A-1002, total: -1}]}",
    )
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="scenario 'big-refund-approved', field fixtures"):
        run(bank(tmp_path, text), out)
    assert not (out / "worlds").exists()
