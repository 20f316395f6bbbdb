"""``proctor release``: record releases, shadow, canary, promote and roll back."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from proctor.app import load_app
from proctor.cli._common import DEFAULT_APP, console, fails_clearly, print_json, runtime
from proctor.evals.gate import load_report
from proctor.policy import PolicyBundle
from proctor.policy.versions import record_bundle_version
from proctor.releases import Release, Releases, build_manifest
from proctor.releases.manifest import diff as manifest_diff
from proctor.releases.manifest import gate
from proctor.releases.reports import DryRunReport, ShadowReport, dry_run_report, shadow_report
from proctor.releases.slo import SloVerdict
from proctor.runtime import Runtime
from proctor.settings import load_settings

app = typer.Typer(
    help="Releases of an agent: record, shadow, canary, promote, roll back.",
    no_args_is_help=True,
)

BY_OPTION = typer.Option(
    None, "--by", help="Who makes the change, as the audit log names it (default: $USER)."
)


def _by(by: str | None) -> str:
    return by or getpass.getuser()


@app.command("create")
@fails_clearly
def create(
    app_ref: str = typer.Option(
        DEFAULT_APP, "--app", envvar="PROCTOR_APP", help="The app, as module:attr."
    ),
    policy: Path | None = typer.Option(
        None, "--policy", help="The policy bundle folder (default: the app's)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="The model the agent runs on (default: the app's; tiers route)."
    ),
    report: Path | None = typer.Option(
        None, "--eval", help="The eval report (report.json) this release passed."
    ),
    note: str = typer.Option(..., "--note", help="What changed, in a person's words."),
    by: str | None = BY_OPTION,
) -> None:
    """Record a release: its manifest, hashed, and what changed."""
    loaded = load_app(app_ref)
    bundle = PolicyBundle.load(policy or loaded.policy)
    rt = Runtime(policy=None, tools=loaded.tools, settings=load_settings())
    try:
        record_bundle_version(rt.store, bundle, rt.clock.now())
        manifest = build_manifest(
            app=app_ref,
            bundle=bundle,
            tools=rt.tools,
            model=model or loaded.model,
            system_prompt=loaded.system_prompt,
            report=load_report(report) if report else None,
        )
        same = rt.releases.same_as(manifest)
        release = rt.releases.create(manifest, note, _by(by))
    finally:
        rt.close()
    console.print(
        f"Recorded release [bold]{release.id}[/] ({release.digest[:12]}): "
        f"{manifest.policy.version}, tools {manifest.tools_version}."
    )
    if same:
        console.print(f"[yellow]Same manifest as {', '.join(same)}[/]: it behaves alike.")


@app.command("list")
@fails_clearly
def list_releases(
    as_json: bool = typer.Option(False, "--json", help="Print the releases as JSON."),
) -> None:
    """Every release, with the channel it serves."""
    rt = runtime(None)
    try:
        _list(rt.releases, as_json)
    finally:
        rt.close()


def _release_json(r: Release, serves: list[str]) -> dict[str, Any]:
    return {
        "id": r.id,
        "digest": r.digest,
        "note": r.note,
        "created_at": r.created_at.isoformat(),
        "created_by": r.created_by,
        "serves": serves,
        "manifest": r.manifest.model_dump(mode="json"),
    }


def _list(releases: Releases, as_json: bool = False) -> None:
    channels = releases.channels()
    if as_json:
        print_json(
            [
                _release_json(r, [n for n, ch in channels.by_name.items() if ch.release == r.id])
                for r in releases.all()
            ]
        )
        return
    table = Table(title="Releases")
    for column in ("release", "digest", "policy", "eval", "serves", "created", "by", "note"):
        table.add_column(column)
    for r in releases.all():
        serves = [
            f"{name}{'' if ch.share == 1 else f' {ch.share:.0%}'}"
            for name, ch in channels.by_name.items()
            if ch.release == r.id
        ]
        table.add_row(
            r.id,
            r.digest[:12],
            r.manifest.policy.version,
            f"{r.manifest.eval.success_rate:.1%}" if r.manifest.eval else "-",
            ", ".join(serves) or "-",
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.created_by,
            r.note,
        )
    console.print(table)


@app.command("show")
@fails_clearly
def show(
    release_id: str = typer.Argument(..., help="The release, e.g. r3."),
    as_json: bool = typer.Option(False, "--json", help="Print the release as JSON."),
) -> None:
    """A release's manifest and note."""
    rt = runtime(None)
    try:
        r = rt.releases.get(release_id)
        channels = rt.releases.channels()
    finally:
        rt.close()
    if as_json:
        print_json(
            _release_json(r, [n for n, ch in channels.by_name.items() if ch.release == r.id])
        )
        return
    m = r.manifest
    console.print(f"[bold]{r.id}[/] {r.digest}", highlight=False)
    console.print(f"note: {r.note}", markup=False, highlight=False)
    console.print(f"created {r.created_at:%Y-%m-%d %H:%M:%S} by {r.created_by}", markup=False)
    console.print(f"app: {m.app}", markup=False, highlight=False)
    console.print(f"policy: {m.policy.version}", markup=False, highlight=False)
    console.print(f"model: {m.model or '(routed by tier)'}", markup=False, highlight=False)
    for tier, spec in m.routing.items():
        console.print(f"  {tier}: {spec}", markup=False, highlight=False)
    console.print(f"system prompt: {m.prompt_hash[:12]}", markup=False)
    console.print(f"tools: {m.tools_version}", markup=False)
    for t in m.tools:
        console.print(
            f"  {t.name}: {t.effect}, trust {t.trust or 'default'}, schema {t.schema_hash}",
            markup=False,
            highlight=False,
        )
    if m.eval is None:
        console.print("eval: (no report)")
    else:
        e = m.eval
        console.print(
            f"eval: {e.suite}, {e.success_rate:.1%} of {e.runs} runs ({e.digest[:12]})",
            markup=False,
        )


@app.command("diff")
@fails_clearly
def diff(
    before: str = typer.Argument(..., help="The release to compare from."),
    after: str = typer.Argument(..., help="The release to compare to."),
) -> None:
    """What changed between two releases, and the eval gate between their reports."""
    rt = runtime(None)
    try:
        a, b = rt.releases.get(before), rt.releases.get(after)
    finally:
        rt.close()
    changes = manifest_diff(a.manifest, b.manifest)
    console.print(f"{a.id} → {b.id}: {len(changes) or 'no'} change(s).", highlight=False)
    for change in changes:
        console.print(f"  {change}", markup=False, highlight=False)
    result = gate(a.manifest, b.manifest)
    if result is None:
        console.print("Eval gate: both releases need an eval report (release create --eval).")
        return
    table = Table(title="Eval gate")
    for column in ("rule", before, after, "threshold", "result", "why"):
        table.add_column(column)
    for row in result.rows:
        verdict = "[green]pass[/]" if row.passed else "[bold red]FAIL[/]"
        table.add_row(
            row.name,
            f"{row.baseline:.4g}",
            f"{row.candidate:.4g}",
            row.threshold,
            verdict,
            row.explanation,
        )
    console.print(table)


@app.command("shadow")
@fails_clearly
def shadow(
    candidate: str | None = typer.Argument(None, help="The release to shadow."),
    fraction: float = typer.Option(1.0, "--fraction", help="Share of live runs mirrored, 0-1."),
    stop: bool = typer.Option(False, "--stop", help="Stop the shadow."),
    by: str | None = BY_OPTION,
) -> None:
    """Mirror live runs into a candidate, its side effects suppressed."""
    rt = runtime(None)
    try:
        if stop:
            console.print(f"Stopped shadowing {rt.releases.stop('shadow', _by(by))}.")
            return
        rt.releases.shadow(_required(candidate), fraction, _by(by))
    finally:
        rt.close()
    console.print(f"Shadowing {candidate} on {fraction:.0%} of live runs.")


@app.command("canary")
@fails_clearly
def canary(
    candidate: str = typer.Argument(..., help="The release to canary."),
    percent: float = typer.Option(..., "--percent", help="Share of new runs, 0-100."),
    by: str | None = BY_OPTION,
) -> None:
    """Send a sticky share of new runs (by tenant and requester) to a candidate."""
    rt = runtime(None)
    try:
        rt.releases.canary(candidate, percent, _by(by))
    finally:
        rt.close()
    console.print(f"Canary {candidate}: {percent:g}% of new runs; the rest stay on stable.")


@app.command("promote")
@fails_clearly
def promote(
    candidate: str = typer.Argument(..., help="The release to make stable."),
    by: str | None = BY_OPTION,
) -> None:
    """Make a release stable: every new run opens under it."""
    rt = runtime(None)
    try:
        rt.releases.promote(candidate, _by(by))
    finally:
        rt.close()
    console.print(f"{candidate} is stable: it serves every new run.")


@app.command("rollback")
@fails_clearly
def rollback(
    to: str | None = typer.Option(None, "--to", help="Make this earlier release stable again."),
    reason: str = typer.Option("rolled back by hand", "--reason", help="Why, for the audit log."),
    by: str | None = BY_OPTION,
) -> None:
    """New runs go to stable at once; the canary's runs in flight finish under it."""
    rt = runtime(None)
    try:
        was = rt.releases.rollback(_by(by), reason, to=to)
        stable = rt.releases.channels().stable
    finally:
        rt.close()
    console.print(
        f"Rolled back {was}; {stable.release if stable else '-'} serves 100% of new runs."
    )


@app.command("dry-run")
@fails_clearly
def dry_run(
    candidate: str | None = typer.Argument(None, help="The release whose bundle decides beside."),
    stop: bool = typer.Option(False, "--stop", help="Stop the dry run."),
    by: str | None = BY_OPTION,
) -> None:
    """Decide every live call with a candidate's bundle too, log only."""
    rt = runtime(None)
    try:
        if stop:
            console.print(f"Stopped the dry run of {rt.releases.stop('dry_run', _by(by))}.")
            return
        rt.releases.dry_run(_required(candidate), _by(by))
    finally:
        rt.close()
    console.print(f"{candidate}'s bundle decides every live call beside the live one, log only.")


@app.command("report")
@fails_clearly
def report(
    candidate: str = typer.Argument(..., help="The shadowed or dry-run release."),
) -> None:
    """The shadow report and the dry-run report of a candidate."""
    rt = runtime(None)
    try:
        rt.releases.get(candidate)
        with rt.store.read() as conn:
            shadowed, decided = shadow_report(conn, candidate), dry_run_report(conn, candidate)
    finally:
        rt.close()
    print_shadow(shadowed)
    print_dry_run(decided)


@app.command("monitor")
@fails_clearly
def monitor(
    app_ref: str = typer.Option(
        DEFAULT_APP, "--app", envvar="PROCTOR_APP", help="The app, as module:attr."
    ),
    every: float = typer.Option(0, "--every", help="Check every this many seconds; 0: once."),
) -> None:
    """Judge the canary against its SLOs and roll it back on a breach."""
    rt = runtime(app_ref)
    try:
        while True:
            verdict = rt.monitor.check()
            print_verdict(verdict)
            if every <= 0:
                return
            time.sleep(every)
    finally:
        rt.close()


def _required(candidate: str | None) -> str:
    if candidate is None:
        raise typer.BadParameter("name the candidate release, or give --stop")
    return candidate


def print_verdict(verdict: SloVerdict | None) -> None:
    if verdict is None:
        console.print("No canary: nothing to judge.")
        return
    table = Table(title=f"SLOs: canary {verdict.canary} against stable {verdict.stable}")
    for column in ("objective", "stable", "canary", "target", "runs", "result", "why"):
        table.add_column(column)
    for row in verdict.rows:
        shown = {"pass": "[green]pass[/]", "fail": "[bold red]FAIL[/]"}.get(row.status, "waiting")
        table.add_row(
            row.objective,
            f"{row.stable:.4g}",
            f"{row.canary:.4g}",
            row.target,
            f"{row.samples[0]} / {row.samples[1]}",
            shown,
            row.explanation,
        )
    console.print(table)


def print_shadow(report: ShadowReport) -> None:
    if not report.pairs:
        console.print(f"No shadow runs of {report.candidate} yet.")
        return
    v = report.verdicts
    console.print(
        f"Shadow report of {report.candidate}: {len(report.pairs)} live run(s) compared: "
        f"{v['same_actions']} same actions, {v['different_actions']} different actions, "
        f"{v['different_decisions']} different decisions.",
        highlight=False,
    )
    console.print(
        f"  states live {report.states('live')} · candidate {report.states('candidate')}; "
        f"seconds live {report.total('live', 'seconds'):.3f} · candidate "
        f"{report.total('candidate', 'seconds'):.3f}; incidents {report.incidents or 'none'}",
        markup=False,
        highlight=False,
    )
    differing = [p for p in report.pairs if p.verdict != "same_actions"]
    if differing:
        table = Table(title="Calls decided otherwise")
        for column in ("live run", "tool", "arguments", "live", "candidate"):
            table.add_column(column)
        for p in differing:
            for c in p.calls:
                if c["live"] == c["candidate"]:
                    continue
                table.add_row(
                    p.live_run[-8:],
                    c["tool"],
                    ", ".join(f"{k}={v}" for k, v in c["args"].items()),
                    f"{c['live']['decision']} → {c['live']['status']}",
                    f"{c['candidate']['decision']} → {c['candidate']['status']}",
                )
        console.print(table)


def print_dry_run(report: DryRunReport) -> None:
    if not report.decisions:
        return
    console.print(
        f"Dry run of {report.candidate}: {report.decisions} live decision(s) in {report.runs} "
        f"run(s) decided again; {report.changed} differ.",
        highlight=False,
    )
    for (live, theirs), count in sorted(report.transitions.items()):
        tools = ", ".join(
            f"{tool} {n[(live, theirs)]}"
            for tool, n in sorted(report.by_tool.items())
            if (live, theirs) in n
        )
        console.print(f"  {live} → {theirs}: {count} ({tools})", markup=False, highlight=False)


def describe(release: Release) -> str:
    return f"{release.id} ({release.manifest.policy.version}): {release.note}"
