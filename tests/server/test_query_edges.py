"""Whatever the query says, the service answers 4xx in its one error shape, never a 500:
amounts and offsets too large for the store, dates that leave the calendar in UTC,
empty, over-long or binary tenants; and a property-based fuzz of every query parameter
of the API's OpenAPI description."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proctor.server.app import create_app

from .conftest import World
from .test_pages import logged_in


def assert_error_shape(response: httpx.Response, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"type", "message", "status"}
    assert body["error"]["status"] == response.status_code
    assert "Traceback" not in body["error"]["message"]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("/api/v1/runs?cost_above=1e20", "cost_above"),
        ("/api/v1/runs?cost_above=nan", "cost_above"),
        ("/api/v1/runs?cost_above=-inf", "cost_above"),
        ("/api/v1/runs?cursor=eyJvZmZzZXQiOiA5OTk5OTk5OTk5OTk5OTk5OTk5OX0", "cursor"),  # 1e20
        ("/api/v1/runs?cursor=eyJvZmZzZXQiOiA5MjIzMzcyMDM2ODU0Nzc1ODA4fQ", "cursor"),  # 2**63
        ("/api/v1/runs?cursor=eyJvZmZzZXQiOiAtMX0", "cursor"),
        ("/api/v1/runs?cursor=not-a-cursor", "cursor"),
        ("/api/v1/approvals?cursor=" + "x" * 201, "cursor"),
        ("/api/v1/runs?limit=100000000000000000000", "limit"),
        ("/api/v1/runs?since=9999-12-31T23:59:59-14:00", "since"),
        ("/api/v1/runs?until=0001-01-01T00:00:00%2B14:00", "until"),
        ("/api/v1/costs?since=0001-01-01T00:00:00%2B14:00", "since"),
        ("/api/v1/costs?until=9999-12-31T23:59:59-14:00", "until"),
        ("/api/v1/costs?top=99999999999999999999", "top"),
        ("/api/v1/runs?tenant=", "tenant"),
        ("/api/v1/runs?tenant=" + "t" * 129, "tenant"),
        ("/api/v1/runs?tenant=%00", "tenant"),
        ("/api/v1/runs?workflow=%00", "workflow"),
        ("/api/v1/runs?workflow=" + "w" * 129, "workflow"),
        ("/api/v1/approvals?tenant=", "tenant"),
        ("/api/v1/approvals?tenant=%20acme", "tenant"),
        ("/api/v1/costs?tenant=", "tenant"),
        ("/api/v1/costs?tenant=" + "t" * 5000, "tenant"),
    ],
)
async def test_a_query_beyond_what_the_store_holds_is_a_4xx(
    client: httpx.AsyncClient, world: World, url: str, says: str
) -> None:
    response = await client.get(url, headers=world.auth("root"))
    assert_error_shape(response, 422)
    assert says in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/runs/%00",
        "/api/v1/runs/" + "r" * 5000,
        "/api/v1/runs/run%0A1",
        "/api/v1/approvals/%00/approve",
        "/api/v1/approvals/" + "a" * 5000 + "/deny",
        "/api/v1/evals/%00",
        "/api/v1/evals/" + "e" * 5000,
    ],
)
async def test_a_path_that_names_nothing_storable_is_a_4xx(
    client: httpx.AsyncClient, world: World, url: str
) -> None:
    if url.endswith(("/approve", "/deny")):
        response = await client.post(url, headers=world.auth("root"), json={"reason": "ok"})
    else:
        response = await client.get(url, headers=world.auth("root"))
    assert_error_shape(response)


@pytest.mark.parametrize(
    "url",
    [
        "/runs?cost_above=1e20",
        "/runs?cost_above=1e999999999",
        "/runs?page=99999999999999999999",
        "/runs?since=0001-01-01T00:00:00%2B14:00",
        "/runs?until=9999-12-31T23:59:59-14:00",
        "/runs?tenant=%00",
        "/runs?workflow=" + "w" * 129,
        "/costs?since=0001-01-01T00:00:00%2B14:00",
        "/costs?tenant=%00",
        "/runs/%00",
        "/runs/" + "r" * 5000,
    ],
)
async def test_a_page_asked_the_same_shows_a_4xx_page(world: World, url: str) -> None:
    async with logged_in(world, "root") as browser:
        response = await browser.get(url)
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    assert "internal error" not in response.text


# -- fuzzing every query parameter the API describes -----------------------------------

EDGES = [
    *("", " ", "\x00", "nan", "inf", "-0", "1e20", "1e999", "99999999999999999999"),
    *("9999-12-31", "0001-01-01", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59-14:00"),
]
NASTY = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=120, max_size=300),
    st.integers().map(str),
    st.integers(min_value=2**62, max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.datetimes().map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "+14:00"),
    st.datetimes().map(lambda d: d.isoformat() + "-14:00"),
    st.sampled_from(EDGES),
)


def _query_routes(client: TestClient) -> list[tuple[str, list[str]]]:
    spec = client.get("/api/v1/openapi.json").json()
    routes = []
    for path, operations in spec["paths"].items():
        get = operations.get("get")
        if get is None or "{" in path:
            continue
        names = [p["name"] for p in get.get("parameters", []) if p["in"] == "query"]
        if names:
            routes.append((path, names))
    return routes


async def test_no_query_makes_the_api_answer_5xx(world: World) -> None:
    def fuzz() -> None:
        client = TestClient(create_app(world.rt), raise_server_exceptions=False)
        routes = _query_routes(client)
        assert {path for path, _ in routes} >= {"/api/v1/runs", "/api/v1/costs"}
        headers = world.auth("root")

        @settings(
            max_examples=150,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        @given(data=st.data())
        def one_query(data: Any) -> None:
            path, names = data.draw(st.sampled_from(routes))
            asked = data.draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
            query = "&".join(f"{n}={quote(data.draw(NASTY), safe='')}" for n in asked)
            response = client.get(f"{path}?{query}", headers=headers)
            assert response.status_code < 500, (path, query, response.text)
            if response.status_code >= 400:
                assert set(response.json()) == {"error"}

        one_query()

    await asyncio.to_thread(fuzz)
