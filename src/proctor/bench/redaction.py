"""How well, and how fast, the redaction detectors do: a labelled corpus, adversarial text.

The corpus is JSON lines. A text line holds ``text`` and its labelled
``spans`` (``kind``, ``start``, ``end``); a line without spans is a near miss
(an order id, a timestamp, a digest…: nothing sensitive); a declared-fields line
holds a JSON ``value`` and the ``fields`` declared sensitive in it.

Spans are matched by overlap: a detected span counts as true when it has the
kind of a labelled span it overlaps, and a labelled span is recalled when a
detected span of its kind overlaps it. ``exact`` counts the recalled spans
whose bounds are also exactly right. The false-positive rate of a kind is the
share of near misses in which it finds something; overall, the share of near
misses in which anything is found. Throughput is the UTF-8 size of every text,
divided by the time to redact them all, median over repeats.

The adversarial figures redact text built to make a careless detector slow
(:data:`SHAPES`) at several sizes; each figure is MB/s, the median over repeats.
A detector that is linear in its input keeps about the same MB/s as the size
grows; one that is not loses it.
"""

from __future__ import annotations

import json
import random
import statistics
import string
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from proctor.redaction import KINDS, MASK, Redactor, Span, detect

_KEY = b"bench-redaction"
_MB: Final = 1_000_000


def _load(corpus_path: Path) -> list[dict[str, Any]]:
    with corpus_path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _overlaps(a: Span, b: Span) -> bool:
    return a.kind == b.kind and a.start < b.end and b.start < a.end


def _ratio(num: int, den: int, empty: float = 1.0) -> float:
    return round(num / den, 4) if den else empty


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


def _accuracy(texts: list[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    counts = {
        k: {"labelled": 0, "recalled": 0, "exact": 0, "detected": 0, "true": 0, "near_hits": 0}
        for k in KINDS
    }
    near = near_hit = 0
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
        if not gold:
            near += 1
            near_hit += bool(found)
            for kind in {f.kind for f in found}:
                counts[kind]["near_hits"] += 1
    kinds = {
        kind: {
            "recall": _ratio(c["recalled"], c["labelled"]),
            "precision": _ratio(c["true"], c["detected"]),
            "false_positive_rate": _ratio(c["near_hits"], near, 0.0),
            "labelled": c["labelled"],
            "detected": c["detected"],
            "exact": c["exact"],
        }
        for kind, c in counts.items()
    }
    overall = {
        "positives": sum(c["labelled"] for c in counts.values()),
        "near_misses": near,
        "recall": _ratio(
            sum(c["recalled"] for c in counts.values()), sum(c["labelled"] for c in counts.values())
        ),
        "false_positive_rate": _ratio(near_hit, near, 0.0),
    }
    return kinds, overall


def _declared_recall(lines: list[dict[str, Any]]) -> dict[str, Any]:
    total = masked = 0
    for line in lines:
        fields = frozenset(line["fields"])
        redacted = Redactor({}, _KEY, fields=fields).value(line["value"])
        for path, _ in _declared(line["value"], fields):
            total += 1
            masked += _at(redacted, path) == MASK
    return {"recall": _ratio(masked, total), "labelled": total}


def _corpus_rate(texts: list[dict[str, Any]], repeats: int) -> float:
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
    return round(statistics.median(rates), 2)


# --- adversarial shapes ---------------------------------------------------------------


def _repeat(unit: Callable[[random.Random], str]) -> Callable[[int], str]:
    """A shape of ``size`` characters made of units drawn with a fixed seed."""

    def build(size: int) -> str:
        rng = random.Random(size)
        parts: list[str] = []
        total = 0
        while total < size:
            part = unit(rng)
            parts.append(part)
            total += len(part)
        return "".join(parts)[:size]

    return build


def _run(alphabet: str) -> Callable[[int], str]:
    def build(size: int) -> str:
        rng = random.Random(size)
        chunk = "".join(rng.choice(alphabet) for _ in range(4096))
        return (chunk * (size // len(chunk) + 1))[:size]

    return build


def _nested_json(size: int) -> str:
    depth = size // 12
    inner = '{"a": [' * depth + '"x@y"' + "]}" * depth
    return inner[:size]


def _digits(n: int, rng: random.Random) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


SHAPES: Final[dict[str, Callable[[int], str]]] = {
    "many_emails": _repeat(lambda r: f"user{r.randrange(10**6)}@m{r.randrange(99)}.example.com, "),
    "unterminated_pem": _repeat(lambda _: "-----BEGIN RSA PRIVATE KEY-----\n"),
    "pem_then_text": _repeat(lambda r: f"-----BEGIN PRIVATE KEY-----\nMIIE{r.randrange(10**9)}\n"),
    "long_digit_run": _run(string.digits),
    "digit_groups": _repeat(lambda r: f"{_digits(r.randint(1, 4), r)} "),
    "phone_numbers": _repeat(lambda r: f"+44 20 7946 {_digits(4, r)}, 030 {_digits(6, r)}; "),
    "token_run": _run(string.ascii_letters + string.digits),
    "token_chars_broken": _run(string.ascii_letters + string.digits + "_-"),
    "at_storm": _repeat(lambda _: "a@"),
    "dotted_domain": _repeat(lambda _: "a."),
    "jwt_like": _repeat(lambda r: f"eyJ{_digits(8, r)}.eyJ{_digits(8, r)}."),
    "keyword_storm": _repeat(lambda _: "password=password: "),
    "iban_like": _repeat(lambda r: f"DE{_digits(2, r)} {_digits(4, r)} {_digits(4, r)} "),
    "nested_json": _nested_json,
    "prose": _repeat(
        lambda r: r.choice(["the order ", "was shipped ", "on 2024-05-02 ", "for $12.50. "])
    ),
}
"""Text built to find a detector that is not linear: name -> a builder of ``size`` characters."""


def adversarial(
    sizes_mb: Sequence[float] = (1, 10, 50),
    repeats: int = 3,
    shapes: Sequence[str] | None = None,
) -> dict[str, dict[str, float]]:
    """MB/s of :meth:`Redactor.text` per shape and size (``"1MB"``…), medians over ``repeats``."""
    figures: dict[str, dict[str, float]] = {}
    for name in shapes or SHAPES:
        build = SHAPES[name]
        figures[name] = {}
        for mb in sizes_mb:
            text = build(int(mb * _MB))
            size = len(text.encode())
            rates = []
            for _ in range(repeats):
                redactor = Redactor({}, _KEY)
                start = time.perf_counter()
                redactor.text(text)
                rates.append(size / (time.perf_counter() - start) / _MB)
            figures[name][f"{mb:g}MB"] = round(statistics.median(rates), 2)
    return figures


def measure(
    corpus_path: Path | str,
    repeats: int = 3,
    sizes_mb: Sequence[float] = (1, 10, 50),
) -> dict[str, Any]:
    """Recall, precision and false-positive rate per kind, declared-field recall, corpus
    throughput, and throughput on adversarial text at ``sizes_mb`` (none: skipped)."""
    lines = _load(Path(corpus_path))
    texts = [line for line in lines if "text" in line]
    kinds, overall = _accuracy(texts)
    figures: dict[str, Any] = {
        "lines": len(lines),
        "match": "overlap, same kind",
        "overall": overall,
        "kinds": kinds,
        "declared": _declared_recall([line for line in lines if "value" in line]),
        "mb_per_s": _corpus_rate(texts, repeats),
    }
    if sizes_mb:
        figures["adversarial_mb_per_s"] = adversarial(sizes_mb, repeats)
    return figures
