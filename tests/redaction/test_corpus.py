"""The labelled corpus: well formed, and the detectors meet their goals on it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from proctor.bench.redaction import measure
from proctor.redaction import KINDS

CORPUS = Path(__file__).with_name("corpus.jsonl")
FULL_RECALL = {"card", "iban"}


@pytest.fixture(scope="module")
def figures() -> dict[str, Any]:
    return measure(CORPUS, repeats=1)


def test_corpus_is_labelled_for_every_kind() -> None:
    lines = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]
    assert len(lines) >= 150
    labelled: set[str] = set()
    for line in lines:
        if "text" in line:
            for span in line["spans"]:
                assert 0 <= span["start"] < span["end"] <= len(line["text"])
                labelled.add(span["kind"])
        else:
            assert line["fields"]
    assert labelled == set(KINDS)
    assert any(not line.get("spans") for line in lines if "text" in line)  # look-alikes only


@pytest.mark.parametrize("kind", KINDS)
def test_recall_and_precision_per_kind(figures: dict[str, Any], kind: str) -> None:
    kind_figures = figures["kinds"][kind]
    assert kind_figures["recall"] >= (1.0 if kind in FULL_RECALL else 0.99)
    assert kind_figures["precision"] >= 0.98


def test_declared_fields_are_all_masked(figures: dict[str, Any]) -> None:
    assert figures["declared"]["recall"] == 1.0
    assert figures["declared"]["labelled"] > 0


def test_throughput_is_reported(figures: dict[str, Any]) -> None:
    assert figures["mb_per_s"] > 0
