"""Untrusted text cannot buy unbounded work: every shape of adversarial text is redacted
in time linear in its size."""

from __future__ import annotations

import time

import pytest

from proctor.bench.redaction import SHAPES, adversarial
from proctor.redaction import Redactor

SMALL, LARGE = 125_000, 1_000_000  # eight times as much


def _seconds(text: str) -> float:
    best = float("inf")
    for _ in range(3):  # the best of three: the machine is shared
        redactor = Redactor({}, key=b"k")
        start = time.perf_counter()
        redactor.text(text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("shape", SHAPES)
def test_time_grows_linearly(shape: str) -> None:
    build = SHAPES[shape]
    small, large = _seconds(build(SMALL)), _seconds(build(LARGE))
    assert large < 5.0, f"{shape}: {large:.2f} s for 1 MB"
    # Linear is 8x; quadratic would be 64x. The slack absorbs timer noise on tiny inputs.
    assert large <= 20 * max(small, 0.005), f"{shape}: {small:.3f} s -> {large:.3f} s"


def test_what_was_slow_is_fast() -> None:
    emails = "maria.garcia@example.com, " * 16_000  # 400 KB: was 6 s
    headers = "-----BEGIN RSA PRIVATE KEY-----\n" * 5_000  # 160 KB: was 8 s
    for text in (emails, headers):
        assert _seconds(text) < 1.0
    out = Redactor({}, key=b"k").text(headers)
    assert set(out.replace("[redacted:secret]", "")) <= {"\n"}


def test_the_benchmark_reports_mb_per_s_per_shape_and_size() -> None:
    figures = adversarial(sizes_mb=(0.01, 0.02), repeats=1, shapes=["many_emails", "prose"])
    assert set(figures) == {"many_emails", "prose"}
    assert set(figures["prose"]) == {"0.01MB", "0.02MB"}
    assert all(v > 0 for shape in figures.values() for v in shape.values())
