"""The service by release: runs and costs filter by the release a run opened under, the
metrics count runs per release, and the releases page is the deployment's own."""

from __future__ import annotations

import httpx

from proctor.policy import PolicyBundle
from proctor.releases import build_manifest
from proctor.testing import FunctionModel

from .conftest import REQUEST, World, _answer
from .test_pages import csrf_of, logged_in


async def _canary_runs(world: World) -> tuple[str, str, list[str]]:
    """A stable release and a candidate (the same bundle, rebuilt) on a 50% canary, with a
    paid model call in each of a dozen runs."""
    rt = world.rt
    bundle = PolicyBundle.load(world.env.bundle)
    manifest = build_manifest(
        app="tests.shop:app",
        bundle=bundle,
        tools=rt.tools,
        model=None,
        system_prompt=None,
        report=None,
    )
    stable = rt.releases.create(manifest, "as it runs", "root").id
    candidate = rt.releases.create(manifest, "rebuilt", "root").id
    rt.releases.promote(stable, "root")
    rt.releases.canary(candidate, 50, "root")
    rt.serving.changed()
    on_candidate = []
    for i in range(12):
        run = await rt.start_run(world.env.spec(requester=f"cust-{i}"))
        await run.ask(FunctionModel(_answer, name="openai:gpt-4o-mini"), REQUEST)
        await run.complete()
        if run.release_id == candidate:
            on_candidate.append(run.id)
    return stable, candidate, on_candidate


async def test_runs_and_costs_filter_by_release(client: httpx.AsyncClient, world: World) -> None:
    _stable, candidate, on_candidate = await _canary_runs(world)
    assert 0 < len(on_candidate) < 12
    auth = world.auth("vera")
    page = (await client.get("/api/v1/runs", headers=auth, params={"release": candidate})).json()
    assert sorted(r["id"] for r in page["items"]) == sorted(on_candidate)
    assert {r["release"] for r in page["items"]} == {candidate}
    costs = (await client.get("/api/v1/costs", headers=auth, params={"release": candidate})).json()
    assert sorted(r["run_id"] for r in costs["top_runs"]) == sorted(on_candidate)[:10]
    everything = (await client.get("/api/v1/costs", headers=auth)).json()
    assert float(costs["total_usd"]) < float(everything["total_usd"])
    bad = await client.get("/api/v1/runs", headers=auth, params={"release": "x" * 300})
    assert bad.status_code == 422

    metrics = (await client.get("/metrics", headers=world.auth("root"))).text
    assert (
        f'proctor_release_runs{{release="{candidate}",state="completed"}} {len(on_candidate)}'
        in metrics
    )


async def test_the_releases_page_is_for_tokens_that_see_every_tenant(world: World) -> None:
    await _canary_runs(world)
    async with logged_in(world, "acme-viewer") as client:
        refused = await client.get("/releases")
        assert refused.status_code == 403
        assert "releases are the deployment&#39;s" in refused.text
    # A viewer sees the switch's state but not the switch, and cannot use it.
    async with logged_in(world, "vera") as client:
        page = await client.get("/releases")
        assert page.status_code == 200
        assert "An admin token can roll it back here." in page.text
        assert "Roll back r2" not in page.text
        tried = await client.post(
            "/releases/rollback", data={"reason": "just because", "csrf": csrf_of(page.text)}
        )
        assert tried.status_code == 403
    assert world.rt.releases.channels().canary is not None
    async with logged_in(world, "root") as client:
        page = await client.get("/releases")
        assert "Roll back r2" in page.text
        done = await client.post(
            "/releases/rollback", data={"reason": "seen enough", "csrf": csrf_of(page.text)}
        )
        assert done.status_code == 303
    assert world.rt.releases.channels().canary is None
