"""``proctor bench redaction``: accuracy per kind and MB/s per adversarial shape, in JSON."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from proctor.bench.redaction import SHAPES
from proctor.cli.main import app
from proctor.redaction import KINDS

CORPUS = Path(__file__).with_name("corpus.jsonl")


def test_bench_redaction_json_reports_kinds_and_shapes() -> None:
    args = ["bench", "redaction", "--json", "--repeats", "1", "--mb", "0.01", "--mb", "0.02"]
    result = CliRunner().invoke(app, [*args, "--corpus", str(CORPUS)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert set(figures["kinds"]) == set(KINDS)
    for kind in figures["kinds"].values():
        assert {"recall", "precision", "false_positive_rate"} <= set(kind)
    assert figures["overall"]["false_positive_rate"] <= 0.01
    assert set(figures["adversarial_mb_per_s"]) == set(SHAPES)
    assert set(figures["adversarial_mb_per_s"]["many_emails"]) == {"0.01MB", "0.02MB"}
