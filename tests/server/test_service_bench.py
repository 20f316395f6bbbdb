"""The service load benchmark, at a tiny size: it runs, and its figures add up."""

from __future__ import annotations

from pathlib import Path

import pytest

from proctor.bench.service import ENDPOINTS, BenchError, measure


@pytest.mark.slow
def test_the_load_bench_drives_every_endpoint_without_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the bench builds its stores under the working directory
    figures = measure(runs=200, clients=5, requests=80, repeats=1)

    assert figures["errors"] == 0, figures.get("error_examples")
    assert figures["stopped_early"] is False
    assert figures["runs_in_store"] == 200
    assert figures["pending_approvals"] >= 20
    assert sum(figures["endpoints"][e]["requests"] for e in ENDPOINTS) == 80
    for endpoint in ENDPOINTS:
        e = figures["endpoints"][endpoint]
        assert e["requests"] > 0
        assert 0 < e["p50_ms"] <= e["p99_ms"] < 30_000
    assert figures["requests_per_s"] > 0
    scrape = figures["metrics_scrape_ms"]
    assert scrape["first"] is not None
    assert scrape["warm"] is not None
    assert figures["metrics_scrapes_failed"] == 0
    assert list(tmp_path.iterdir()) == []  # its stores are gone


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"runs": 10}, "at least 40 runs"),
        ({"clients": 10, "requests": 5}, "a request at least"),
        ({"db_url": "mysql://db/x"}, "postgresql://"),
    ],
)
def test_options_it_cannot_run_with_are_refused_clearly(
    options: dict[str, object], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BenchError, match=message):
        measure(**{"repeats": 1, **options})
