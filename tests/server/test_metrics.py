"""``/metrics`` as Prometheus scrapes it: figures from the store, after real runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from proctor.server.app import create_app
from proctor.server.metrics import CALL_BUCKETS_S, RunningTally, governed_latency_s
from proctor.states import Reason

from .conftest import USAGE, World

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def named(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """The service with public metrics, as Prometheus on a private network scrapes it."""
    transport = httpx.ASGITransport(app=create_app(world.rt, public_metrics=True))
    async with httpx.AsyncClient(transport=transport, base_url="http://proctor.test") as c:
        yield c


async def test_public_metrics_need_no_token_and_hold_the_stores_figures(
    client: httpx.AsyncClient, world: World
) -> None:
    m = await scrape(client)

    assert named(m, "proctor_runs") == {
        (("reason", ""), ("state", "awaiting_approval"), ("tenant", "acme")): 1,
        (("reason", ""), ("state", "running"), ("tenant", "acme")): 0,
        (("reason", ""), ("state", "awaiting_approval"), ("tenant", "globex")): 0,
        (("reason", ""), ("state", "running"), ("tenant", "globex")): 1,
    }
    assert named(m, "proctor_policy_decisions_total") == {
        (("effect", "require_approval"), ("tenant", "acme"), ("tool", "refund")): 1,
        (("effect", "allow"), ("tenant", "globex"), ("tool", "lookup")): 1,
    }
    assert value(m, "proctor_approvals_pending", tenant="acme") == 1

    model = {"tenant": "acme", "model": "openai:gpt-4o-mini"}
    assert value(m, "proctor_model_calls_total", **model) == 2
    one = world.rt.prices.cost("openai:gpt-4o-mini", USAGE)
    cost = value(m, "proctor_model_cost_usd_total", **model)
    assert cost is not None
    assert Decimal(str(cost)) == 2 * one > 0
    tokens = {
        kind: value(m, "proctor_model_tokens_total", kind=kind, **model)
        for kind in ("input", "cached_input", "output", "reasoning")
    }
    assert tokens == {"input": 2000, "cached_input": 0, "output": 200, "reasoning": 0}

    # The lookup ran in one go and is timed; the refund waits for approval and is not.
    assert value(m, "proctor_governed_call_seconds_count", tool="lookup") == 1
    assert 0 < (value(m, "proctor_governed_call_seconds_sum", tool="lookup") or 0) < 5
    assert value(m, "proctor_governed_call_seconds_count", tool="refund") is None
    assert named(m, "proctor_approval_decision_seconds_count") == {}
    assert value(m, "proctor_spans_dropped_total") == 0


async def test_figures_follow_a_decided_approval_and_runs_that_end(
    client: httpx.AsyncClient, world: World
) -> None:
    await scrape(client)  # the first scrape folds what is there; the next ones add to it
    world.env.clock.advance(600)  # the request is 660 s old when sam approves it
    response = await client.post(
        f"/api/v1/approvals/{world.approval}/approve",
        headers=world.auth("sam"),
        json={"reason": "customer verified"},
    )
    assert response.status_code == 200, response.text

    m = await scrape(client)
    assert value(m, "proctor_approvals_pending", tenant="acme") == 0
    decided = {"tenant": "acme", "verdict": "approved"}
    assert value(m, "proctor_approval_decision_seconds_count", **decided) == 1
    assert value(m, "proctor_approval_decision_seconds_sum", **decided) == 660
    assert value(m, "proctor_approval_decision_seconds_bucket", le="300", **decided) == 0
    assert value(m, "proctor_approval_decision_seconds_bucket", le="900", **decided) == 1

    held = await world.rt.resume(world.held_run)
    await held.resume_pending()
    await held.complete()
    other = await world.rt.resume(world.other_run)
    other.seek(len(other.steps))  # go on after the lookup it made
    await other.call("lookup", {"order_id": "G-8"})
    await other.fail_safe(Reason.TOOL_ERROR, "the shop's API answered 500")

    m = await scrape(client)
    assert value(m, "proctor_runs", tenant="acme", state="completed", reason="done") == 1
    assert value(m, "proctor_runs", tenant="acme", state="awaiting_approval", reason="") == 0
    assert value(m, "proctor_runs", tenant="globex", state="failed_safe", reason="tool_error") == 1
    assert value(m, "proctor_runs", tenant="globex", state="running", reason="") == 0
    assert (
        value(m, "proctor_policy_decisions_total", tenant="globex", tool="lookup", effect="allow")
        == 2
    )
    assert value(m, "proctor_governed_call_seconds_count", tool="lookup") == 2
    # The refund ran after its approval: only the stages after the pause were timed.
    assert value(m, "proctor_governed_call_seconds_count", tool="refund") is None
    assert value(m, "proctor_approval_decision_seconds_count", **decided) == 1

    assert await scrape(client) == m  # scraping again counts nothing twice


async def test_a_denied_call_counts_as_a_deny(client: httpx.AsyncClient, world: World) -> None:
    other = await world.rt.resume(world.other_run)
    other.seek(len(other.steps))  # go on after the lookup it made
    await other.call("refund", {"order_id": "G-7", "amount": "5000.00"})
    m = await scrape(client)
    assert (
        value(m, "proctor_policy_decisions_total", tenant="globex", tool="refund", effect="deny")
        == 1
    )
    assert value(m, "proctor_governed_call_seconds_count", tool="refund") is None


async def test_the_telemetry_exporters_dropped_spans(world: World) -> None:
    dropped = {"n": 7}
    app = create_app(world.rt, dropped_spans=lambda: dropped["n"], public_metrics=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://proctor.test") as c:
        assert value(await scrape(c), "proctor_spans_dropped_total") == 7
        dropped["n"] = 9
        assert value(await scrape(c), "proctor_spans_dropped_total") == 9

        def broken() -> int:
            raise RuntimeError("exporter gone")

        app.state.dropped_spans = broken  # set after the app was built, as telemetry may
        m = await scrape(c)
        assert value(m, "proctor_spans_dropped_total") is None  # left out, not made up
        assert value(m, "proctor_approvals_pending", tenant="acme") == 1


async def test_metrics_ask_for_a_token_that_sees_every_tenant(world: World) -> None:
    transport = httpx.ASGITransport(app=create_app(world.rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://proctor.test") as c:
        assert (await c.get("/metrics")).status_code == 401
        scoped = await c.get("/metrics", headers=world.auth("acme-viewer"))
        assert scoped.status_code == 403
        assert "every tenant" in scoped.json()["error"]["message"]
        assert (
            value(await scrape(c, **world.auth("vera")), "proctor_approvals_pending", tenant="acme")
            == 1
        )


async def test_a_store_that_does_not_answer_is_a_503(world: World) -> None:
    app = create_app(world.rt, public_metrics=True)
    store = world.rt.store
    working, store.engine = (
        store.engine,
        sa.create_engine(f"sqlite:///{world.env.tmp}/missing/dir/proctor.db"),
    )
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://proctor.test") as c:
            response = await c.get("/metrics")
    finally:
        store.engine.dispose()
        store.engine = working
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "StoreUnavailable"


async def test_openapi_lists_metrics(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/api/v1/openapi.json")).json()["paths"]
    assert "/metrics" in paths


# -- the running tally, on its own -------------------------------------------------------

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


Row = tuple[tuple[str, ...], datetime, float]


def rows_since(rows: list[Row], tally: RunningTally) -> list[Row]:
    """What the store answers to the collector's query: rows from the mark on."""
    return [r for r in rows if tally.mark is None or r[1] >= tally.mark]


@pytest.mark.parametrize("late_by", [0.0, 30.0])
def test_the_tally_counts_each_row_once_and_takes_late_commits_within_the_window(
    late_by: float,
) -> None:
    tally = RunningTally(CALL_BUCKETS_S, settle=timedelta(seconds=60))
    store: list[Row] = [(("lookup",), at(s), 0.001) for s in (0, 100, 200, 300)]
    first = tally.update(rows_since(store, tally), now=at(300))
    assert first[("lookup",)].count == 4
    assert tally.mark == at(240)

    # A row stamped before the newest one commits only now: still inside the window.
    store.append((("lookup",), at(300 - late_by), 0.002))
    store.append((("refund",), at(400), 0.5))
    second = tally.update(rows_since(store, tally), now=at(400))
    assert second[("lookup",)].count == 5
    assert second[("lookup",)].total == pytest.approx(0.006)
    assert second[("refund",)].count == 1
    assert second[("refund",)].buckets[CALL_BUCKETS_S.index(0.5)] == 1

    third = tally.update(rows_since(store, tally), now=at(500))
    assert {k: (s.count, s.buckets) for k, s in third.items()} == {
        k: (s.count, s.buckets) for k, s in second.items()
    }


def test_a_stamp_ahead_of_the_clock_does_not_skip_rows() -> None:
    tally = RunningTally(settle=timedelta(seconds=60))
    tally.update([(("x",), at(10_000), 1.0)], now=at(0))  # a worker's clock far ahead
    assert tally.mark == at(-60)
    totals = tally.update([(("x",), at(10_000), 1.0), (("x",), at(5), 1.0)], now=at(5))
    assert totals[("x",)].count == 2


@pytest.mark.parametrize(
    ("timings", "expected"),
    [
        (
            {
                "budget": 10.0,
                "decide": 100.0,
                "record_intent": 300.0,
                "execute": 5_000_000.0,
                "record_outcome": 90.0,
            },
            0.0005,
        ),
        ({"execute": 20.0, "record_outcome": 80.0}, None),  # ran after an approval
        ({}, None),
        (None, None),
    ],
)
def test_governed_latency_leaves_out_the_tools_own_time(
    timings: dict[str, float] | None, expected: float | None
) -> None:
    result = governed_latency_s(timings)
    assert result == (pytest.approx(expected) if expected is not None else None)
