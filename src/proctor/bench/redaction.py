"""How well, and how fast, the redaction detectors do on a labelled corpus.

The corpus is JSON lines. A text line holds ``text`` and its labelled
``spans`` (``kind``, ``start``, ``end``); a declared-fields line holds a JSON
``value`` and the ``fields`` declared sensitive in it.

Spans are matched by overlap: a detected span counts as true when it has the
kind of a labelled span it overlaps, and a labelled span is recalled when a
detected span of its kind overlaps it. ``exact`` counts the recalled spans
whose bounds are also exactly right. Throughput is the UTF-8 size of every
text, divided by the time to redact them all, median over repeats.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from proctor.redaction import KINDS, MASK, Redactor, Span, detect

_KEY = b"bench-redaction"


def _load(corpus_path: Path) -> list[dict[str, Any]]:
    with corpus_path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _overlaps(a: Span, b: Span) -> bool:
    return a.kind == b.kind and a.start < b.end and b.start < a.end


def _ratio(num: int, den: int) -> float:
    return round(num / den, 4) if den else 1.0


def _declared(value: Any, fields: frozenset[str]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """(path, value) of every non-null declared field in ``value``."""
    if isinstance(value, Mapping):
        for k, v in value.items():
            if k in fields and v is not None:
                yield (k,), v
            else:
                for path, inner in _declared(v, fields):
                    yield (k, *path), inner
    elif isinstance(value, list):
        for i, v in enumerate(value):
            for path, inner in _declared(v, fields):
                yield (i, *path), inner


def _at(value: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _accuracy(texts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    counts = {
        k: {"labelled": 0, "recalled": 0, "exact": 0, "detected": 0, "true": 0} for k in KINDS
    }
    for line in texts:
        gold = [Span(s["start"], s["end"], s["kind"]) for s in line["spans"]]
        found = detect(line["text"])
        for g in gold:
            c = counts[g.kind]
            c["labelled"] += 1
            c["recalled"] += any(_overlaps(g, f) for f in found)
            c["exact"] += g in found
        for f in found:
            c = counts[f.kind]
            c["detected"] += 1
            c["true"] += any(_overlaps(f, g) for g in gold)
    return {
        kind: {
            "recall": _ratio(c["recalled"], c["labelled"]),
            "precision": _ratio(c["true"], c["detected"]),
            "labelled": c["labelled"],
            "detected": c["detected"],
            "exact": c["exact"],
        }
        for kind, c in counts.items()
    }


def _declared_recall(lines: list[dict[str, Any]]) -> dict[str, Any]:
    total = masked = 0
    for line in lines:
        fields = frozenset(line["fields"])
        redacted = Redactor({}, _KEY, fields=fields).value(line["value"])
        for path, _ in _declared(line["value"], fields):
            total += 1
            masked += _at(redacted, path) == MASK
    return {"recall": _ratio(masked, total), "labelled": total}


def measure(corpus_path: Path | str, repeats: int = 3) -> dict[str, Any]:
    """Recall and precision per kind, declared-field recall, and redaction throughput."""
    lines = _load(Path(corpus_path))
    texts = [line for line in lines if "text" in line]
    size = sum(len(line["text"].encode()) for line in texts)
    rounds = max(1, 1_000_000 // max(size, 1))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(rounds):
            # A fresh redactor each round: text seen before is remembered as clean, and
            # the figure is for text the detectors have not seen.
            redactor = Redactor({}, _KEY)
            for line in texts:
                redactor.text(line["text"])
        rates.append(size * rounds / (time.perf_counter() - start) / 1e6)
    return {
        "lines": len(lines),
        "match": "overlap, same kind",
        "kinds": _accuracy(texts),
        "declared": _declared_recall([line for line in lines if "value" in line]),
        "mb_per_s": round(statistics.median(rates), 2),
    }
