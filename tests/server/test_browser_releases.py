"""The releases page in a real browser: an admin sees the stable release and the canary
with their SLO figures, and rolls the canary back with the switch."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from proctor import RunSpec
from proctor.examples.support import BUNDLE, SYSTEM_PROMPT, World
from proctor.policy import PolicyBundle
from proctor.policy.versions import record_bundle_version
from proctor.releases import build_manifest
from proctor.server.tokens import Role, create_token

from .test_browser import CHROMIUM, _agent, _playwright, _runtime, served  # noqa: F401

WEAKER = (
    'when { context.args.amount.lessThanOrEqual(decimal("100.00")) }',
    'when { context.args.amount.lessThanOrEqual(decimal("1000.00")) }',
)


def _releases(home: Path, world: World, tmp_path: Path) -> str:
    """A stable release, a weaker candidate on a 50% canary, and some traffic on both."""
    weaker = tmp_path / "weaker"
    shutil.copytree(BUNDLE, weaker)
    refunds = weaker / "refunds.cedar"
    refunds.write_text(refunds.read_text().replace(*WEAKER, 1))
    settings = weaker / "proctor.yaml"
    settings.write_text(settings.read_text().replace("label: support-v1", "label: support-v2"))

    async def go() -> str:
        rt = _runtime(home, world)
        agent = _agent(rt)
        try:
            made = []
            for path, note in ((BUNDLE, "as it runs today"), (weaker, "bigger refunds alone")):
                bundle = PolicyBundle.load(path)
                record_bundle_version(rt.store, bundle, rt.clock.now())
                manifest = build_manifest(
                    app="proctor.examples.support:app",
                    bundle=bundle,
                    tools=rt.tools,
                    model=None,
                    system_prompt=SYSTEM_PROMPT,
                    report=None,
                )
                made.append(rt.releases.create(manifest, note, "ann").id)
            rt.releases.promote(made[0], "ann")
            rt.releases.canary(made[1], 50, "ann")
            rt.serving.changed()
            for i in range(8):
                spec = RunSpec(
                    agent="support-agent",
                    role="support_agent",
                    tenant="acme",
                    workflow="support",
                    requester=f"customer-{i}",
                )
                await agent.run("Where is my order A-1001?", spec)
            token, _ = create_token(rt.store, "ada", Role.ADMIN, None, rt.clock.now())
            return token
        finally:
            await agent.aclose()
            rt.close()

    return asyncio.run(go())


@pytest.mark.slow
@pytest.mark.timeout(300)  # starts a server and a browser
def test_an_admin_rolls_the_canary_back_from_the_releases_page(
    served: tuple[str, Path, World],  # noqa: F811
    tmp_path: Path,
) -> None:
    sync_api = _playwright()
    base, home, world = served
    secret = _releases(home, world, tmp_path)
    expect = sync_api.expect
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(10_000)
            page.goto(f"{base}/releases")
            page.fill("#token", secret)
            page.get_by_role("button", name="Log in").click()
            expect(page).to_have_url(f"{base}/releases")

            expect(page.locator("#stable")).to_contain_text("r1")
            expect(page.locator("#stable")).to_contain_text("50% of new runs")
            expect(page.locator("#canary")).to_contain_text("r2")
            expect(page.locator("#canary")).to_contain_text("bigger refunds alone")
            slo = page.locator("#slo")
            expect(slo).to_contain_text("incidents.policy_breach")
            expect(slo).to_contain_text("success_rate")
            expect(slo).to_contain_text("waiting for 20 ended runs")
            page.screenshot(path=str(tmp_path / "releases.png"), full_page=True)
            print(f"screenshot: {tmp_path / 'releases.png'}")

            page.fill("#canary input[name=reason]", "customers report odd refunds")
            page.get_by_role("button", name="Roll back r2").click()
            expect(page).to_have_url(f"{base}/releases")
            expect(page.locator(".flash.ok")).to_contain_text("Rolled back r2")
            expect(page.locator("#canary")).to_contain_text("No canary")
            expect(page.locator("#stable")).to_contain_text("100% of new runs")
            expect(page.locator("#transitions")).to_contain_text(
                "rollback: canary r2 → — by ada: customers report odd refunds"
            )
            page.goto(f"{base}/runs?release=r2")
            expect(page.locator("table.grid tbody tr")).not_to_have_count(0)
            page.screenshot(path=str(tmp_path / "releases-rolled-back.png"), full_page=True)
        finally:
            browser.close()
