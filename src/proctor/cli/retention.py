"""``proctor retention purge``: delete what the bundle's retention settings say has expired."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from proctor.cli._common import APP_OPTION, console, fails_clearly, runtime
from proctor.errors import ConfigError
from proctor.retention.purge import purge as run_purge
from proctor.runtime import Runtime
from proctor.settings import load_settings

app = typer.Typer(
    help="Purge audit payloads and finished runs older than the bundle's retention.",
    no_args_is_help=True,
)


@app.command("purge")
@fails_clearly
def purge(
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would go; delete nothing."),
    tenant: str | None = typer.Option(None, help="Only this tenant."),
    policy: Path | None = typer.Option(
        None, help="The policy bundle whose proctor.yaml sets retention (or --app)."
    ),
    app_ref: str | None = APP_OPTION,
) -> None:
    """Purge expired audit payloads (envelopes and hashes stay) and finished runs' contents.

    Runs still in flight are never purged. Each batch is recorded in the audit
    chain as a retention.purged entry, so `proctor audit verify` still passes.
    """
    rt = _runtime(policy, app_ref)
    try:
        bundle = rt.policy
        retention = bundle.settings.retention
        if not retention.configured:
            console.print(
                f"Bundle {bundle.version} sets no retention, so nothing expires. Add a "
                "`retention:` section to its proctor.yaml, e.g.\n"
                "  retention:\n    default: {payloads: 90d, runs: 365d}"
            )
            return
        report = run_purge(
            rt.store,
            rt.audit,
            retention,
            now=rt.clock.now(),
            bundle_version=str(bundle.version),
            tenant=tenant,
            dry_run=dry_run,
        )
    finally:
        rt.close()
    verb = "would purge" if dry_run else "purged"
    table = Table(title=f"Retention under {bundle.version}" + (" (dry run)" if dry_run else ""))
    for column in ("tenant", "kind", "rule", verb, "oldest", "newest"):
        table.add_column(column, justify="right" if column == verb else "left")
    for p in report.purged:
        table.add_row(p.tenant, p.kind.value, p.rule, str(p.count), _at(p.oldest), _at(p.newest))
    if report.purged:
        console.print(table, markup=False)
    what = "would be purged" if dry_run else "purged"
    console.print(
        f"{report.total} item(s) {what}."
        + ("" if dry_run or not report.total else " `proctor audit verify` lists them as purged.")
    )


def _runtime(policy: Path | None, app_ref: str | None) -> Runtime:
    if policy is not None:
        return Runtime(policy=policy, settings=load_settings())
    if app_ref:
        return runtime(app_ref)
    raise ConfigError(
        "retention is set in a policy bundle's proctor.yaml: pass --policy DIR "
        "or --app module:attr (PROCTOR_APP)"
    )


def _at(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S}"
