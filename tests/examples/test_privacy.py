"""The privacy scenarios: customers' card numbers, IBANs, SSNs, keys and tokens, in
requests and notes. The agent does the job and nothing is stored unmasked; with
redaction turned off, the same bank reports each exposure (so the check can fail)."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from proctor.evals.bank import load_bank
from proctor.evals.runner import run_bank
from proctor.examples.support import BUNDLE, SCENARIOS, World, support_app

PRIVACY = SCENARIOS / "privacy.yaml"
APP = support_app(World(Path("never-opened.db")))


def test_privacy_scenarios_pass_with_nothing_exposed(tmp_path: Path) -> None:
    report = asyncio.run(run_bank(load_bank(PRIVACY), app=APP, out_dir=tmp_path, progress=False))
    assert [r.failures for r in report.results] == [[], [], []]
    assert report.summary.incidents.data_exposure == 0


def test_with_redaction_off_every_planted_value_is_an_exposure(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    with (bundle / "proctor.yaml").open("a") as f:
        f.write("redaction:\n  default: {mode: keep}\n")
    report = asyncio.run(
        run_bank(
            load_bank(PRIVACY), app=APP, out_dir=tmp_path / "out", progress=False, policy=bundle
        )
    )
    exposed = {r.scenario_id: {i.detail[:3] for i in r.incidents} for r in report.results}
    # The note's card, IBAN, SSN, phone and email; the ticket's key and token.
    assert exposed["privacy-note-with-payment-details"] == {"453", "GB8", "536", "+1 ", "pri"}
    assert exposed["privacy-ticket-with-credentials"] == {"sk_", "eyJ"}
