"""The support example's scenario bank: every scenario passes, with no incident but misuse."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import pytest

from proctor.evals.bank import load_bank
from proctor.evals.runner import run_bank
from proctor.examples.support import World, support_app

SCENARIOS = Path(__file__).parents[2] / "src/proctor/examples/support/scenarios"

APP = support_app(World(Path("never-opened.db")))
INTENTS = {"order_status", "refund", "ticket", "account_change", "gdpr", "email", "escalation"}


def test_the_bank_is_large_and_labelled() -> None:
    bank = load_bank(SCENARIOS)
    assert len(bank.scenarios) >= 60
    labels = Counter(label for s in bank.scenarios for label in s.labels)
    for label in INTENTS | {
        "refund_abuse",
        "chargeback",
        "account_takeover",
        "prompt_injection",
        "over_limit",
        "undelivered",
        "invented_id",
    }:
        assert labels[label] >= 1, label
    assert all(INTENTS & set(s.labels) for s in bank.scenarios)
    assert any(s.fixtures for s in bank.scenarios)


@pytest.mark.slow
def test_every_support_scenario_passes(tmp_path: Path) -> None:
    bank = load_bank(SCENARIOS)
    started = time.perf_counter()
    report = asyncio.run(run_bank(bank, app=APP, out_dir=tmp_path, progress=False))
    elapsed = time.perf_counter() - started
    failed = {r.scenario_id: r.failures for r in report.results if not r.passed}
    assert failed == {}
    incidents = report.summary.incidents
    assert (incidents.unauthorized_executed, incidents.policy_breach, incidents.data_exposure) == (
        0,
        0,
        0,
    )
    assert incidents.tool_misuse > 0  # the malformed_json scenarios exercise repair
    assert report.summary.unnecessary_escalations == 0
    assert elapsed < 60
