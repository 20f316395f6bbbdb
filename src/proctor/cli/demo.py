"""``proctor demo``: the main job. An app's scenario bank, end to end.

It runs the bank of the app's eval suite (the bundled example unless
``--app`` names another), each scenario in a fresh world, with the simulated model at the
failure rates each scenario sets, prints a summary, writes the JSON and HTML
reports, verifies the audit chain, and says what to try next. ``--walkthrough``
makes the suite's short scripted run instead: one allowed, one denied and one
approval-needing call, the last approved and resumed.
"""

from __future__ import annotations

import shlex
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from proctor.app import App, load_app
from proctor.approvals import Approver
from proctor.audit import VerifyReport
from proctor.cli._common import (
    DEFAULT_APP,
    RUN_APP_OPTION,
    console,
    fails_clearly,
    run_async,
    shortened,
)
from proctor.cli.demo_releases import releases_demo
from proctor.errors import ConfigError
from proctor.evals.report import Report
from proctor.evals.scenario import Scenario
from proctor.evals.suite import EvalSuite, Walkthrough, suite_of
from proctor.runs import CallOutcome, Origin, RunSpec
from proctor.runtime import Runtime
from proctor.settings import Settings, load_settings
from proctor.states import RunState

_STYLE = {"executed": "green", "denied": "red", "awaiting_approval": "yellow"}


@fails_clearly
def demo(
    walkthrough: bool = typer.Option(
        False, "--walkthrough", help="The short scripted walkthrough instead of the bank."
    ),
    releases: bool = typer.Option(
        False,
        "--releases",
        help="A candidate release shadowed, canaried and rolled back by its SLOs.",
    ),
    seed: int = typer.Option(0, help="Seed of the simulated model: same seed, same report."),
    concurrency: int = typer.Option(4, min=1, help="Scenarios run at once."),
    app_ref: str = RUN_APP_OPTION,
) -> None:
    """Run the app's scenario bank end to end, report it, verify the audit log."""
    app = load_app(app_ref)
    if releases:
        releases_demo(app, app_ref)
        return
    if walkthrough:
        _walkthrough(app)
        return
    _bank(app, app_ref, seed, concurrency)


def _bank(app: App, app_ref: str, seed: int, concurrency: int) -> None:
    from proctor.evals.bank import load_bank
    from proctor.evals.html import write_report
    from proctor.evals.runner import run_bank

    suite = suite_of(app)
    settings = load_settings()
    reports = settings.home / "reports"
    out = reports / "latest"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    bank = load_bank(suite.scenarios)
    console.print(f"Scenario bank: {len(bank.scenarios)} scenarios ({suite.scenarios})")
    started = time.perf_counter()
    report = run_async(
        run_bank(
            bank,
            app=app,
            out_dir=out,
            seed_offset=seed,
            concurrency=concurrency,
            settings=settings,
        )
    )
    elapsed = time.perf_counter() - started
    json_path, html_path = write_report(report, out)
    latest = reports / "latest.json"
    latest.write_text(json_path.read_text())
    _summary_table(report)
    verified = _verify(settings)
    request = _example_request(report, bank.scenarios)
    app_args = () if app_ref == DEFAULT_APP else ("--app", app_ref)
    candidate = settings.home / "reports" / "candidate"
    console.print(
        f"\nRan {report.summary.runs} scenarios in {elapsed:.1f} s.\n"
        f"Reports: {html_path}\n         {latest}\n"
        f"Audit log: {verified}",
        markup=False,
        highlight=False,
    )
    _next_steps(
        ["open", _path(html_path)],
        ["proctor", "eval", "show", _path(latest)],
        ["proctor", "run", *app_args, request],
        ["proctor", "approvals", "list"],
        [
            "proctor",
            "tokens",
            "create",
            "--name",
            "sam",
            "--role",
            "approver",
            "--policy-role",
            "supervisor",
        ],
        ["proctor", "serve", *app_args],
        ["proctor", "eval", "run", *app_args, "--seed", "1", "--out", _path(candidate)],
        [
            "proctor",
            "eval",
            "gate",
            "--baseline",
            _path(latest),
            "--candidate",
            _path(candidate / "report.json"),
        ],
        ["proctor", "policy", "matrix", _path(app.policy), *app_args],
    )
    if report.summary.incidents.unauthorized_executed:
        raise typer.Exit(1)


def _example_request(report: Report, scenarios: Sequence[Scenario]) -> str:
    """A request worth trying by hand: one that waited for a person, without a fault."""
    waiting = [
        r.scenario_id
        for r in report.results
        if r.state == RunState.AWAITING_APPROVAL
        and not any(label.startswith("fault:") for label in r.labels)
    ]
    wanted = waiting[0] if waiting else scenarios[0].id
    return next(s.request for s in scenarios if s.id == wanted)


def _summary_table(report: Report) -> None:
    s = report.summary
    table = Table(title=f"{report.suite}: {report.manifest.policy_version}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        ("runs", str(s.runs)),
        (
            "success rate",
            f"{s.success.value:.1%} (95% CI {s.success.low:.1%}–{s.success.high:.1%})",
        ),
        ("unauthorized actions executed", str(s.incidents.unauthorized_executed)),
        ("policy breaches", str(s.incidents.policy_breach)),
        ("data exposures", str(s.incidents.data_exposure)),
        ("invalid actions (tool misuse)", str(s.incidents.tool_misuse)),
        ("escalations (unnecessary)", f"{s.escalations} ({s.unnecessary_escalations})"),
        (
            "cost per run, mean / p95",
            f"${s.cost_per_run_usd.mean:.5f} / ${s.cost_per_run_usd.p95:.5f}",
        ),
        ("time per run, p50 / p95", f"{s.duration_s.p50:.2f} s / {s.duration_s.p95:.2f} s"),
        ("model calls per run, mean", f"{s.model_calls_per_run.mean:.1f}"),
    ]
    rows += [(f"  state {state}", str(n)) for state, n in sorted(s.states.items())]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    by_label = Table(title="Success by label")
    for column in ("label", "runs", "success", "95% CI"):
        by_label.add_column(column)
    for label, stats in sorted(s.by_label.items()):
        i = stats.success
        by_label.add_row(label, str(stats.runs), f"{i.value:.0%}", f"{i.low:.0%}–{i.high:.0%}")
    console.print(by_label)
    console.print(label_table(report))


def label_table(report: Report) -> Table:
    """Per label: the incidents of its runs, and whether they asked a person."""
    table = Table(
        title="Incidents and approvals by label",
        caption="unauth.: calls the scenario forbids, executed; breach: executed though policy "
        "denies or holds them; asked: runs that asked a person; alone: runs completed "
        "without asking anyone",
    )
    table.add_column("label", no_wrap=True)
    for column in ("runs", "unauth.", "breach", "asked", "alone"):
        table.add_column(column, justify="right", no_wrap=True)
    for label, stats in sorted(report.summary.by_label.items()):
        alone = stats.unattended
        table.add_row(
            label,
            str(stats.runs),
            str(stats.unauthorized_executed),
            str(stats.policy_breaches),
            str(stats.escalated),
            f"{alone.successes} ({alone.value:.0%})" if alone is not None else "",
        )
    return table


def _verify(settings: Settings) -> str:
    rt = Runtime(policy=None, settings=settings)
    try:
        report = rt.verify_audit()
    finally:
        rt.close()
    if not report.ok:
        console.print(f"[bold red]Audit log does not verify[/]: {report.problems[0]}")
        raise typer.Exit(1)
    return (
        f"verified {report.checked} entries in {report.tenants} chain(s), "
        f"{report.checkpoints} signed checkpoint(s)"
    )


# -- the walkthrough ------------------------------------------------------------------------

_WALKTHROUGH_SCENARIO = Scenario.model_validate(
    {
        "id": "walkthrough",
        "labels": ["walkthrough"],
        "request": "the demo walkthrough",
        "expect": {"state": "completed"},
    }
)
"""What the suite's world factory builds the walkthrough's world for: no fixture changes."""


@dataclass
class _Walked:
    run_id: str = ""
    calls: list[tuple[str, CallOutcome]] = field(default_factory=list)
    state: RunState = RunState.RUNNING
    report: VerifyReport | None = None


def _script(suite: EvalSuite) -> Walkthrough:
    if suite.walkthrough is None:
        raise ConfigError(
            f"eval suite {suite.name!r} has no walkthrough: give it one "
            "(EvalSuite(walkthrough=Walkthrough(...))) or run the bank without --walkthrough"
        )
    return suite.walkthrough


async def _walk(rt: Runtime, suite: EvalSuite, script: Walkthrough) -> _Walked:
    """Make the script's calls in one run, approve the one that waits, resume, verify."""
    out = _Walked()
    defaults = suite.run
    spec = RunSpec(
        agent=script.agent or defaults.agent.format(tenant=script.tenant),
        role=defaults.role,
        tenant=script.tenant,
        workflow=script.workflow or defaults.workflow,
        requester=script.requester,
        origin=Origin.DEMO,
    )
    run = await rt.start_run(spec)
    out.run_id = run.id
    for call in script.calls:
        outcome = await run.call(call.tool, dict(call.args), reason=call.label)
        out.calls.append((call.label, outcome))
        if outcome.approval_id is not None:
            break  # nothing else runs until a person decides
    pending = out.calls[-1][1] if out.calls else None
    if pending is not None and pending.approval_id is not None:
        who = Approver(script.approver, script.approver_role)
        rt.approvals.approve(pending.approval_id, who, script.note)
        resumed = await rt.resume(run.id)
        done = await resumed.resume_pending()
        if done is not None:
            label = f"approved by {script.approver} ({script.approver_role}), then resumed"
            out.calls.append((label, done))
        run = resumed
    await run.complete("walkthrough finished")
    out.state = run.state
    out.report = rt.verify_audit()
    return out


def _walkthrough(app: App) -> None:
    suite = suite_of(app)
    script = _script(suite)
    settings = load_settings()
    world = suite.world(settings.home / "walkthrough" / "world.db", _WALKTHROUGH_SCENARIO)
    rt = Runtime(policy=app.policy, tools=world.tools, settings=settings)
    try:
        console.print(f"Store: {settings.database_url}   Policy: {rt.policy.version}")
        result = run_async(_walk(rt, suite, script))
        short_id = shortened(rt, "run", [result.run_id])[result.run_id]
    finally:
        rt.close()
    table = Table(title=f"Run {result.run_id}")
    for column in ("step", "proposal", "decision", "policies", "outcome"):
        table.add_column(column)
    for label, outcome in result.calls:
        decision = outcome.decision
        style = _STYLE.get(outcome.status.value, "white")
        table.add_row(
            str(outcome.step),
            label,
            decision.effect.value if decision else "",
            ", ".join(decision.policy_ids) if decision else "",
            f"[{style}]{outcome.status.value}[/]",
        )
    console.print(table)
    console.print(f"Run ended [bold]{result.state}[/].")
    report = result.report
    if report is None or not report.ok:
        problem = report.problems[0] if report else "not verified"
        console.print(f"[bold red]Audit log does not verify[/]: {problem}")
        raise typer.Exit(1)
    console.print(
        f"[green]Audit log verified[/]: {report.checked} entries, "
        f"{report.checkpoints} signed checkpoint(s)."
    )
    _next_steps(
        ["proctor", "runs", "list"],
        ["proctor", "runs", "show", short_id],
        ["proctor", "audit", "verify"],
        ["proctor", "policy", "matrix", _path(rt.policy.path), "--app", DEFAULT_APP],
        ["proctor", "bench"],
    )


def _next_steps(*commands: Sequence[str | Path], out: Console = console) -> None:
    """Commands to try, each on one line as a shell takes it: every argument quoted
    where it needs to be (``$520`` stays ``$520``), and never wrapped by the console
    (a terminal wraps it for the eye; a copy of it stays one command)."""
    out.print("\nNext, try:", highlight=False)
    for command in commands:
        line = "  " + shlex.join(str(arg) for arg in command)
        out.print(line, markup=False, highlight=False, soft_wrap=True)


def _path(path: Path) -> str:
    """A path as printed in a command: relative to where the user is when it is below it,
    else absolute (a bundled app's files are in the installed package)."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd()))
    except ValueError:
        return str(resolved)
