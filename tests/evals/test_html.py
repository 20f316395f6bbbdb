"""The HTML report: self-contained, escaped, and linking each failing run to its timeline."""

from __future__ import annotations

import json
import re
from pathlib import Path

from proctor.evals.html import render_html, write_report
from proctor.evals.report import Report

from .test_gate import make_report


def test_the_page_is_self_contained() -> None:
    page = render_html(make_report(20, failed=3))
    assert page.startswith("<!doctype html>")
    assert "http" not in page
    assert "<script" not in page
    assert "<link" not in page
    assert re.search(r"\bsrc=", page) is None
    assert page.count("<svg") == 3  # by label, cost histogram, terminal states


def test_failing_scenarios_are_listed_with_links_to_their_runs() -> None:
    report = make_report(20, failed=3)
    page = render_html(report)
    failing = [r for r in report.results if not r.passed]
    for r in failing:
        assert f'href="runs/{r.run_id}"' in page
        assert r.scenario_id in page
    passing = next(r for r in report.results if r.passed)
    assert passing.run_id not in page
    assert "refund did not execute" in page


def test_run_links_can_point_at_the_service() -> None:
    page = render_html(make_report(5, failed=1), run_link=lambda rid: f"/ui/runs/{rid}?tab=steps")
    assert 'href="/ui/runs/run_0000?tab=steps"' in page


def test_every_string_is_escaped() -> None:
    report = make_report(
        5,
        failed=1,
        failure_text="<script>alert(1)</script> & more",
        manifest={"prompt_hash": '"><img onerror=x>'},
    )
    page = render_html(report)
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "<img" not in page


def test_headline_numbers_are_shown() -> None:
    page = render_html(make_report(20, failed=2))
    assert "90.0%" in page  # success rate
    assert "18/20" in page
    assert "handed_off" in page
    assert "support@abc123" in page  # the manifest


def test_an_empty_report_renders() -> None:
    report = make_report(1)
    empty = report.model_copy(update={"results": []})
    assert "Every scenario passed." in render_html(empty)


def test_write_report_writes_json_and_html(tmp_path: Path) -> None:
    report = make_report(10, failed=2)
    json_path, html_path = write_report(report, tmp_path / "out")
    assert Report.model_validate(json.loads(json_path.read_text())) == report
    assert html_path.read_text() == render_html(report)
