"""``proctor bench redaction``: accuracy per kind and MB/s per adversarial shape, in JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from proctor.bench.redaction import SHAPES
from proctor.cli.bench import CORPUS as SHIPPED_CORPUS
from proctor.cli.main import app
from proctor.redaction import KINDS

CORPUS = SHIPPED_CORPUS


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


def test_bench_redaction_needs_no_checkout(tmp_path: Path) -> None:
    # From a folder outside any checkout, as after `pip install proctor`: the corpus ships.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    args = ["bench", "redaction", "--json", "--repeats", "1", "--mb", "0.01"]
    done = subprocess.run(
        [sys.executable, "-m", "proctor", *args],
        cwd=tmp_path,
        env={**env, "PROCTOR_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert set(json.loads(done.stdout)["kinds"]) == set(KINDS)
    assert "site-packages" in str(CORPUS) or "src/proctor/bench" in str(CORPUS)


def test_a_missing_corpus_says_what_one_looks_like(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "redaction", "--corpus", str(tmp_path / "x")])
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # as one line, however the terminal wrapped it
    assert "no redaction corpus at" in said
    assert "pass --corpus PATH" in said
