"""``proctor demo --releases``: a release's way to production traffic, and back, offline.

The support example's scenario bank plays live traffic on a stable release (its
bundle as shipped). A candidate whose bundle is weaker (refunds up to $1,000 run
without a supervisor) is shadowed first: its shadow runs execute no write, and the
shadow report shows the writes it would have made. It is then canaried to 20% of
requesters; the SLO monitor sees its first refund the stable policy would have held
for approval, a forbidden incident, and rolls it back: new runs go to the stable
release, which serves 100%. Every transition is in the audit log, which verifies.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from rich.table import Table

from proctor.agent import Agent
from proctor.agent.factory import agent_for_app
from proctor.app import App
from proctor.cli._common import console, run_async
from proctor.cli.release import print_shadow, print_verdict
from proctor.errors import ConfigError
from proctor.evals.bank import load_bank
from proctor.evals.suite import suite_of
from proctor.policy import PolicyBundle
from proctor.policy.versions import record_bundle_version
from proctor.releases import build_manifest
from proctor.releases.registry import transitions
from proctor.releases.reports import shadow_report
from proctor.releases.slo import SloVerdict
from proctor.runs import RunSpec
from proctor.runtime import Runtime
from proctor.settings import Settings, load_settings
from proctor.store.tables import runs

_WEAKER = (
    'when { context.args.amount.lessThanOrEqual(decimal("100.00")) }',
    'when { context.args.amount.lessThanOrEqual(decimal("1000.00")) }',
)
"""The candidate's change: the small-refund rule's ceiling, raised to $1,000."""

CANARY_PASSES = 3
"""How often the canary phase plays the bank, at most, waiting for the monitor."""
TENANT = "acme"
OPERATOR = "release-manager"


def releases_demo(app: App, app_ref: str) -> None:
    started = time.perf_counter()
    suite = suite_of(app)
    home = load_settings().home / "demo-releases"
    if home.exists():
        shutil.rmtree(home)
    home.mkdir(parents=True)
    settings = Settings(home=home, releases_refresh_s=0)
    bank = load_bank(suite.scenarios)
    world = suite.world(home / "world.db", bank.scenarios[0])
    requests = [s.request for s in bank.scenarios]
    rt = Runtime(policy=app.policy, tools=world.tools, settings=settings)
    try:
        stable, candidate = _releases(rt, app, app_ref, _weaker(app.policy, home / "candidate"))
        agent = agent_for_app(rt, app)
        console.print(
            f"Live traffic: {len(requests)} requests from the {suite.name} bank, "
            f"offline (simulated model). Store: {settings.database_url}"
        )

        console.rule("1. Shadow: the candidate follows every live run, side effects suppressed")
        rt.releases.shadow(candidate, 1.0, OPERATOR, "before any traffic reaches it")
        run_async(_traffic(agent, requests, "shadow"))
        with rt.store.read() as conn:
            print_shadow(shadow_report(conn, candidate))
        rt.releases.stop("shadow", OPERATOR, "shadow report read")

        console.rule("2. Canary: 20% of requesters (sticky) on the candidate")
        rt.releases.canary(candidate, 20, OPERATOR, "shadow accepted for a canary")
        verdict = run_async(_canary(rt, agent, requests, candidate))
        print_verdict(verdict)
        _served(rt)

        console.rule("3. Audit: every release transition")
        _transitions(rt)
        report = rt.verify_audit()
        if not report.ok:
            raise ConfigError(f"the audit log does not verify: {report.problems[0]}")
        console.print(
            f"[green]Audit log verified[/]: {report.checked} entries, "
            f"{report.checkpoints} signed checkpoint(s)."
        )
        now = rt.releases.channels()
        share = f"{1 - now.canary.share:.0%}" if now.canary else "100%"
        console.print(
            f"Stable {stable} serves {share} of new runs (canary: "
            f"{now.canary.release if now.canary else 'none'}). "
            f"Done in {time.perf_counter() - started:.1f}s."
        )
        console.print(
            "\nNext, try:\n"
            f"  PROCTOR_HOME={home} proctor release list\n"
            f"  PROCTOR_HOME={home} proctor release diff {stable} {candidate}\n"
            f"  PROCTOR_HOME={home} proctor release report {candidate}\n"
            f"  PROCTOR_HOME={home} proctor runs list --release {candidate}"
        )
    finally:
        rt.close()


def _weaker(bundle: Path, into: Path) -> Path:
    """A copy of the support bundle with the small-refund ceiling raised."""
    shutil.copytree(bundle, into)
    refunds = into / "refunds.cedar"
    if not refunds.is_file() or _WEAKER[0] not in refunds.read_text():
        raise ConfigError(
            "the releases demo weakens the support example's refund policy; run it with "
            "--app proctor.examples.support:app"
        )
    refunds.write_text(refunds.read_text().replace(*_WEAKER, 1))
    settings = into / "proctor.yaml"
    text = settings.read_text()
    settings.write_text(text.replace("label: support-v1", "label: support-v1-fast-refunds", 1))
    return into


def _releases(rt: Runtime, app: App, app_ref: str, weaker: Path) -> tuple[str, str]:
    made = []
    for path, note in (
        (app.policy, "the support agent as it runs today"),
        (weaker, "refunds up to $1,000 run without a supervisor, to answer faster"),
    ):
        bundle = PolicyBundle.load(path)
        record_bundle_version(rt.store, bundle, rt.clock.now())
        manifest = build_manifest(
            app=app_ref,
            bundle=bundle,
            tools=rt.tools,
            model=app.model,
            system_prompt=app.system_prompt,
            report=None,
        )
        made.append(rt.releases.create(manifest, note, OPERATOR))
    stable, candidate = made
    rt.releases.promote(stable.id, OPERATOR, "first release")
    for r in made:
        console.print(f"Release [bold]{r.id}[/] {r.manifest.policy.version}: {r.note}")
    return stable.id, candidate.id


async def _traffic(agent: Agent, requests: list[str], phase: str) -> None:
    for i, request in enumerate(requests):
        spec = RunSpec(
            agent="support-bot",
            role="support_agent",
            tenant=TENANT,
            workflow="support",
            requester=f"{phase}-customer-{i:02d}",
        )
        await agent.run(request, spec)


async def _canary(
    rt: Runtime, agent: Agent, requests: list[str], candidate: str
) -> SloVerdict | None:
    """The bank, played again by new requesters, until the monitor rolls the canary back
    (at most ``CANARY_PASSES`` times); the verdict of the monitor's last check."""
    served = 0
    for round_ in range(CANARY_PASSES):
        for i, request in enumerate(requests):
            spec = RunSpec(
                agent="support-bot",
                role="support_agent",
                tenant=TENANT,
                workflow="support",
                requester=f"canary-customer-{round_}-{i:02d}",
            )
            await agent.run(request, spec)
            served += 1
            if rt.releases.channels().canary is None:
                console.print(f"The SLO monitor rolled {candidate} back after {served} requests.")
                return rt.monitor.last
    console.print(f"{candidate} held its SLOs over {served} requests.")
    return rt.monitor.check()


def _served(rt: Runtime) -> None:
    with rt.store.read() as conn:
        counted = Counter(
            (r.release, r.state)
            for r in conn.execute(
                sa.select(runs.c.release, runs.c.state).where(runs.c.created_at.is_not(None))
            )
        )
    table = Table(title="Runs by release")
    for column in ("release", "state", "runs"):
        table.add_column(column)
    for (release, state), n in sorted(counted.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        table.add_row(str(release), state, str(n))
    console.print(table)


def _transitions(rt: Runtime) -> None:
    with rt.store.read() as conn:
        entries = transitions(conn)
    for e in entries:
        p = e.payload
        if p["kind"] == "release.created":
            line = f"created {p['release']} by {p['actor']}: {p['note']}"
        elif p["kind"] == "release.moved":
            target = p["release"] or "-"
            line = (
                f"{p['action']}: {p['channel']} {p['previous'] or '-'} → {target} "
                f"({p['share']:.0%}) by {p['actor']}"
            )
            if p["reason"]:
                line += f": {p['reason']}"
        else:
            failed = "; ".join(
                f"{f['objective']} {f['canary']:g} (stable {f['stable']:g})" for f in p["failures"]
            )
            line = f"SLO breached by {p['canary']} against {p['stable']}: {failed}"
        console.print(f"  #{e.seq} {e.kind:<21} {line}", markup=False, highlight=False)
