"""``proctor demo``: the main job. The support example's scenario bank, end to end.

It builds the example world fresh for each scenario, runs the bank with the
simulated model at realistic failure rates, prints a summary, writes the JSON
and HTML reports, verifies the audit chain, and says what to try next.
``--walkthrough`` runs the short kernel walkthrough instead.
"""

from __future__ import annotations

import shutil
import time

import typer
from rich.table import Table

from proctor.cli._common import console, fails_clearly, run_async
from proctor.demo import app as demo_app
from proctor.demo import run_walkthrough
from proctor.evals.report import Report
from proctor.runtime import Runtime
from proctor.settings import Settings, load_settings

_STYLE = {"executed": "green", "denied": "red", "awaiting_approval": "yellow"}


@fails_clearly
def demo(
    walkthrough: bool = typer.Option(
        False, "--walkthrough", help="The short kernel walkthrough instead of the bank."
    ),
    seed: int = typer.Option(0, help="Seed of the simulated model: same seed, same report."),
    concurrency: int = typer.Option(4, min=1, help="Scenarios run at once."),
) -> None:
    """Run the support example's scenario bank end to end, report it, verify the audit log."""
    if walkthrough:
        _walkthrough()
        return
    _bank(seed, concurrency)


def _bank(seed: int, concurrency: int) -> None:
    from proctor.evals.bank import load_bank
    from proctor.evals.html import write_report
    from proctor.evals.runner import run_bank
    from proctor.examples.support import SCENARIOS

    settings = load_settings()
    reports = settings.home / "reports"
    out = reports / "latest"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    bank = load_bank(SCENARIOS)
    console.print(f"Scenario bank: {len(bank.scenarios)} scenarios ({SCENARIOS})")
    started = time.perf_counter()
    report = run_async(
        run_bank(bank, out_dir=out, seed_offset=seed, concurrency=concurrency, settings=settings)
    )
    elapsed = time.perf_counter() - started
    json_path, html_path = write_report(report, out)
    latest = reports / "latest.json"
    latest.write_text(json_path.read_text())
    _summary_table(report)
    verified = _verify(settings)
    console.print(
        f"\nRan {report.summary.runs} scenarios in {elapsed:.1f} s.\n"
        f"Reports: {html_path}\n         {latest}\n"
        f"Audit log: {verified}\n"
        "\nNext, try:\n"
        f"  open {html_path}\n"
        "  proctor eval show .proctor/reports/latest.json\n"
        '  proctor run "Refund $520 on order A-1002, the customer sent it back"\n'
        "  proctor approvals list\n"
        "  proctor tokens create --name sam --role approver --policy-role supervisor\n"
        "  proctor serve --app proctor.examples.support:app   # http://127.0.0.1:8000\n"
        "  proctor eval gate --baseline A.json --candidate B.json\n"
        "  proctor policy matrix src/proctor/examples/support/bundle "
        "--app proctor.examples.support:app"
    )
    if report.summary.incidents.unauthorized_executed:
        raise typer.Exit(1)


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


def _walkthrough() -> None:
    settings = load_settings()
    rt = Runtime.for_app(demo_app(), settings)
    console.print(f"Store: {settings.database_url}   Policy: {rt.policy.version}")
    result = run_async(run_walkthrough(rt))
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
    console.print(
        "\nNext, try:\n"
        "  proctor runs list\n"
        f"  proctor runs show {result.run_id}\n"
        "  proctor audit verify\n"
        f"  proctor policy matrix {rt.policy.path}\n"
        "  proctor bench"
    )
