"""``proctor evidence``: export an audit evidence bundle, and verify one offline."""

from __future__ import annotations

from pathlib import Path

import typer

from proctor.audit import VerifyKey
from proctor.cli._common import APP_OPTION, console, err_console, fails_clearly, runtime
from proctor.errors import ConfigError
from proctor.evidence.format import parse_moment

app = typer.Typer(
    help="Export an audit evidence bundle for a time range; verify one offline.",
    no_args_is_help=True,
)


@app.command("export")
@fails_clearly
def export(
    since: str = typer.Option(..., help="Start of the range: a date like 2026-11-01 (UTC)."),
    until: str | None = typer.Option(
        None, help="End of the range, that day included (default: now)."
    ),
    out: Path = typer.Option(..., help="The zip file to write, e.g. evidence.zip."),
    tenant: str | None = typer.Option(None, help="Only this tenant (default: every tenant)."),
    policy: Path | None = typer.Option(
        None, help="The current policy bundle, for versions used before bundles were kept."
    ),
    app_ref: str | None = APP_OPTION,
) -> None:
    """Write the audit log, policies, permission matrices, eval reports and a readable index.

    Exit 1 when the runs or approvals tables say what the audit chain does not (the
    bundle then holds the chain's word); exit 2, writing nothing, when the chain does
    not verify."""
    from proctor.evidence.export import export_evidence
    from proctor.runtime import Runtime
    from proctor.settings import load_settings

    start = parse_moment(since, "--since")
    rt = (
        Runtime(policy=policy, settings=load_settings()) if policy is not None else runtime(app_ref)
    )
    try:
        end = parse_moment(until, "--until", end_of_day=True) if until else rt.clock.now()
        summary = export_evidence(rt, out, since=start, until=end, tenant=tenant)
    finally:
        rt.close()
    console.print(
        f"Wrote {summary.path}: {summary.entries} audit entries of "
        f"{len(summary.tenants)} tenant(s), {summary.runs} run(s), "
        f"{len(summary.bundles)} policy bundle version(s), {summary.reports} eval report(s), "
        f"{summary.files} files and the manifest that signs them.",
        highlight=False,
    )
    if summary.signed_heads:
        console.print(
            "Signed a checkpoint now for "
            + ", ".join(summary.signed_heads)
            + ": no checkpoint covered the end of the range yet.",
            highlight=False,
        )
    for discrepancy in summary.discrepancies:
        err_console.print(
            f"[bold red]not backed by the audit chain[/]: {discrepancy}; the bundle holds the "
            "chain's word.",
            highlight=False,
        )
    for version in summary.missing_bundles:
        err_console.print(
            f"[yellow]warning[/]: the files of bundle {version} were not kept (it was used "
            "before bundle versions were stored); pass --policy with that bundle to include it.",
            highlight=False,
        )
    console.print(f"Check it offline: proctor evidence verify {out}", highlight=False)
    if summary.discrepancies:
        # The tables were changed behind the chain's back: that is for someone to look at.
        raise typer.Exit(1)


@app.command("verify")
@fails_clearly
def verify(
    bundle: Path = typer.Argument(..., metavar="FILE.zip", help="An evidence bundle."),
    public_key: Path | None = typer.Option(
        None, "--public-key", help="The deployment's PEM public key (proctor audit public-key)."
    ),
) -> None:
    """Check an evidence bundle with no database: hashes, signature, audit chain, bundles."""
    from proctor.evidence.verify import verify_evidence

    key = None
    if public_key is not None:
        try:
            data = public_key.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read the public key {public_key}: {exc.strerror}") from exc
        key = VerifyKey.from_pem(data, str(public_key))
    report = verify_evidence(bundle, key)
    if not report.ok:
        err_console.print(f"[bold red]FAILED[/]: {bundle}", highlight=False)
        for failure in report.failures[:20]:
            err_console.print(f"  {failure}", highlight=False, markup=False)
        if len(report.failures) > 20:
            err_console.print(f"  … and {len(report.failures) - 20} more")
        raise typer.Exit(1)
    console.print(
        f"[green]OK[/]: {bundle} — {report.files} files match the signed manifest; "
        f"{report.entries} audit entries in {report.tenants} chain(s) re-verified "
        f"({report.checkpoints} signed checkpoint(s), {report.purged} payload(s) purged by "
        f"retention); {report.bundles} policy bundle version(s) match their hash; "
        f"{report.reports} eval report(s). Range {report.since} to {report.until}.",
        highlight=False,
    )
    for version in report.missing_bundles:
        console.print(f"Not included: the files of bundle {version}.", highlight=False)
    if report.key_given:
        console.print(f"Signed by the given key {report.key_id}.", highlight=False)
    else:
        console.print(
            f"[yellow]Verified only against the key embedded in the bundle[/] ({report.key_id}): "
            "this shows nothing was changed after signing, not who signed it. Pass "
            "--public-key with the output of `proctor audit public-key` to check its origin.",
            highlight=False,
        )
