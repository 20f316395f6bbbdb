"""``proctor eval``: read eval reports and gate releases on them.

Also the command functions ``policy_replay`` (``proctor policy replay``) and
``scenario_from_run`` (``proctor scenario from-run``), registered by ``main``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from proctor.app import load_app
from proctor.cli._common import RUN_APP_OPTION, console, fails_clearly, print_json, runtime
from proctor.evals import from_run
from proctor.evals.gate import (
    MEAN_TEST,
    SUCCESS_TEST,
    TAIL_TEST,
    GateRow,
    GateRules,
    compare,
    load_report,
    load_rules,
)
from proctor.evals.replay import replay_decisions
from proctor.evals.report import Incidents, Interval, Report
from proctor.policy import PolicyBundle
from proctor.runs.views import resolve_id

app = typer.Typer(help="Read eval reports and gate releases on them.", no_args_is_help=True)


def _interval(iv: Interval) -> str:
    return f"{iv.value:.1%} [{iv.low:.1%}, {iv.high:.1%}] ({iv.successes}/{iv.trials})"


def _metrics_table(report: Report) -> Table:
    s = report.summary
    table = Table(title=f"Eval report — {report.suite} ({report.manifest.created_at})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("runs", str(s.runs))
    table.add_row("success (95% CI)", _interval(s.success))
    for kind in Incidents.model_fields:
        count = getattr(s.incidents, kind)
        table.add_row(f"incidents: {kind}", f"[red]{count}[/]" if count else "0")
    table.add_row("escalations (unnecessary)", f"{s.escalations} ({s.unnecessary_escalations})")
    table.add_row(
        "cost per run mean / p95",
        f"${s.cost_per_run_usd.mean:.4f} / ${s.cost_per_run_usd.p95:.4f}",
    )
    table.add_row("duration p50 / p95", f"{s.duration_s.p50:.2f}s / {s.duration_s.p95:.2f}s")
    table.add_row("tokens per run mean", f"{s.tokens_per_run.mean:.0f}")
    table.add_row("states", ", ".join(f"{k} {v}" for k, v in sorted(s.states.items())))
    if s.flaky_scenarios:
        table.add_row("flaky scenarios", ", ".join(s.flaky_scenarios))
    return table


@app.command("run")
@fails_clearly
def run(
    bank_path: Path | None = typer.Argument(
        None, metavar="[BANK]", help="A scenario file or folder; default: the app's own bank."
    ),
    out: Path = typer.Option(..., help="Folder for report.json, report.html and the runs."),
    repeat: int = typer.Option(1, min=1, help="Runs of each scenario, to measure flakiness."),
    seed: int = typer.Option(0, help="Added to every scenario's seed: same seed, same report."),
    concurrency: int = typer.Option(4, min=1, help="Scenarios run at once."),
    policy: Path | None = typer.Option(
        None, help="A candidate policy bundle to evaluate instead of the app's own."
    ),
    app_ref: str = RUN_APP_OPTION,
) -> None:
    """Run a scenario bank in fresh isolated worlds, built by the app's eval suite, and
    write its reports."""
    from proctor.cli._common import run_async
    from proctor.evals.bank import load_bank
    from proctor.evals.html import write_report
    from proctor.evals.runner import run_bank
    from proctor.evals.suite import suite_of

    app = load_app(app_ref)
    bank = load_bank(bank_path or suite_of(app).scenarios)
    out.mkdir(parents=True, exist_ok=True)
    report = run_async(
        run_bank(
            bank,
            app=app,
            out_dir=out,
            seed_offset=seed,
            repeats=repeat,
            concurrency=concurrency,
            policy=policy,
        )
    )
    json_path, html_path = write_report(report, out)
    s = report.summary
    console.print(
        f"{s.runs} runs: success {s.success.value:.1%} "
        f"({s.success.low:.1%}–{s.success.high:.1%}), "
        f"unauthorized actions executed {s.incidents.unauthorized_executed}.\n"
        f"Reports: {json_path}\n         {html_path}"
    )


@app.command("schema")
@fails_clearly
def schema() -> None:
    """Print the scenario bank format as JSON Schema."""
    import json

    from proctor.evals.scenario import scenario_json_schema

    print(json.dumps(scenario_json_schema(), indent=2))


@app.command("show")
@fails_clearly
def show(
    report_path: Path = typer.Argument(..., metavar="REPORT", help="A report.json."),
    as_json: bool = typer.Option(
        False, "--json", help="Print the report's manifest and summary as JSON."
    ),
) -> None:
    """Summarise a report: its metrics, success by label, and the failing scenarios."""
    report = load_report(report_path)
    if as_json:
        print_json(
            {
                "suite": report.suite,
                "manifest": report.manifest.model_dump(mode="json"),
                "summary": report.summary.model_dump(mode="json"),
                "failing": [r.model_dump(mode="json") for r in report.results if not r.passed],
            }
        )
        return
    console.print(_metrics_table(report))
    labels = Table(title="By label")
    labels.add_column("label")
    labels.add_column("runs", justify="right")
    labels.add_column("success (95% CI)", justify="right")
    for label, stats in sorted(report.summary.by_label.items()):
        labels.add_row(label, str(stats.runs), _interval(stats.success))
    console.print(labels)
    failing = [r for r in report.results if not r.passed]
    if not failing:
        console.print("[green]Every scenario passed.[/]")
        return
    table = Table(title=f"Failing scenarios ({len(failing)})")
    for column in ("scenario", "repeat", "state", "failures", "run"):
        table.add_column(column, no_wrap=column in ("scenario", "run"))
    for r in failing:
        state = r.state + (f" ({r.reason})" if r.reason else "")
        table.add_row(r.scenario_id, str(r.repeat), state, "\n".join(r.failures), r.run_id)
    console.print(table, markup=False)


def _value(row: GateRow, value: float) -> str:
    if row.name.startswith("incidents."):
        return str(int(value))
    if row.name.startswith("success_rate"):
        return f"{value:.1%}"
    if row.name.startswith("cost"):
        return f"${value:.4f}"
    return f"{value:.2f}s"


@app.command("gate")
@fails_clearly
def gate(
    baseline: Path = typer.Option(..., "--baseline", help="The released version's report.json."),
    candidate: Path = typer.Option(..., "--candidate", help="The candidate's report.json."),
    rules_path: Path | None = typer.Option(
        None,
        "--rules",
        help="Gate rules as YAML (alpha, cost_rise, cost_min_rise_usd, duration_p95_rise, "
        "duration_min_rise_s, by_label); see docs/evals.md.",
    ),
) -> None:
    """Compare a candidate with a baseline, rule by rule; exit 1 on any regression."""
    rules = load_rules(rules_path) if rules_path else GateRules()
    result = compare(load_report(baseline), load_report(candidate), rules)
    table = Table(title="Release gate")
    for column in ("rule", "baseline", "candidate", "threshold", "result", "why"):
        table.add_column(
            column,
            justify="right" if column in ("baseline", "candidate") else "left",
            no_wrap=column in ("rule", "result"),
        )
    for row in result.rows:
        verdict = "[green]pass[/]" if row.passed else "[bold red]FAIL[/]"
        table.add_row(
            row.name,
            _value(row, row.baseline),
            _value(row, row.candidate),
            row.threshold,
            verdict,
            row.explanation,
        )
    console.print(table)
    console.print(
        f"Success rate drops tested with a {SUCCESS_TEST}, cost means with a {MEAN_TEST}, "
        f"p95s with a {TAIL_TEST}, at alpha = {rules.alpha:g}.",
        highlight=False,
    )
    if result.manifest_changes:
        console.print("Manifest changes:", highlight=False)
        for change in result.manifest_changes:
            console.print(f"  {change}", markup=False, highlight=False)
    else:
        console.print("Manifest: unchanged.")
    if not result.passed:
        names = ", ".join(row.name for row in result.failures)
        console.print(f"[bold red]Regression[/]: {names}.")
        raise typer.Exit(1)
    console.print("[green]Pass[/]: no regression.")


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@fails_clearly
def policy_replay(
    bundle: Path = typer.Argument(..., help="The candidate bundle folder."),
    since: datetime | None = typer.Option(
        None, "--since", help="Only runs created at or after this time (UTC unless given)."
    ),
    app_ref: str | None = typer.Option(
        None,
        "--app",
        envvar="PROCTOR_APP",
        help="The app whose tools give effect classes and argument types, as module:attr.",
    ),
    examples: int = typer.Option(3, "--examples", min=0, help="Examples shown per transition."),
) -> None:
    """Re-decide every recorded call under a candidate bundle and show what would change."""
    candidate = PolicyBundle.load(bundle)
    tools = load_app(app_ref).tools if app_ref else ()
    rt = runtime(None)
    try:
        with rt.store.read() as conn:
            report = replay_decisions(conn, candidate, since=_utc(since), tools=list(tools))
    finally:
        rt.close()
    console.print(
        f"Replayed {report.steps} recorded decision(s) under {report.candidate_version}: "
        f"{report.unchanged} unchanged, {len(report.changes)} changed."
    )
    if report.changes:
        transitions = Table(title="Changes")
        for column in ("before", "after", "calls", "by tool"):
            transitions.add_column(column)
        for (before, after), count in report.transitions.most_common():
            by_tool = ", ".join(
                f"{tool} {n[(before, after)]}"
                for tool, n in sorted(report.by_tool.items())
                if n[(before, after)]
            )
            transitions.add_row(before.value, after.value, str(count), by_tool)
        console.print(transitions)
        shown = Table(title="Examples")
        for column in ("run", "step", "tool", "change", "policies before", "policies after", "?"):
            shown.add_column(column, no_wrap=column == "run")
        for changes in report.examples.values():
            for c in changes[:examples]:
                flags = [
                    *(["resource"] if c.resource_dependent else []),
                    *(["masked args"] if c.masked_args else []),
                ]
                shown.add_row(
                    c.run_id,
                    str(c.step),
                    c.tool,
                    f"{c.before.value} → {c.after.value}",
                    ", ".join(c.before_policy_ids) or "(default deny)",
                    ", ".join(c.after_policy_ids) or "(default deny)",
                    ", ".join(flags),
                )
        console.print(shown)
    if report.unknown_tools:
        console.print(
            f"[yellow]Tools not known without --app[/] (decided with effect class 'unknown'): "
            f"{', '.join(sorted(report.unknown_tools))}"
        )
    if report.uncertain:
        console.print(
            f"[yellow]{len(report.uncertain)} change(s) may differ live[/]: marked in '?' above."
        )
    console.print("Limits of a replay:")
    for limit in report.limits:
        console.print(f"  - {limit}", markup=False, highlight=False)


@fails_clearly
def scenario_from_run(
    run_id: str = typer.Argument(..., help="The run's id, or its start (see `proctor runs list`)."),
    out: Path | None = typer.Option(None, "--out", help="Write the bank file here."),
) -> None:
    """Write a stored run as a scenario; its observed outcome becomes the expectations to edit."""
    rt = runtime(None)
    try:
        with rt.store.read() as conn:
            run_id = resolve_id(conn, "run", run_id)
            request = from_run.request_of(rt.sealer, conn, run_id)
            scenario = from_run.scenario_from_run(conn, run_id, request=request)
    finally:
        rt.close()
    text = from_run.scenario_yaml(scenario, run_id=run_id)
    if out is None:
        print(text, end="")
        return
    out.write_text(text, encoding="utf-8")
    console.print(f"Wrote scenario {scenario['id']} to {out}: edit its expectations.")
