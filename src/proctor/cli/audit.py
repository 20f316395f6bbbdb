"""``proctor audit``: verify the hash-chained log and its signed checkpoints."""

from __future__ import annotations

from pathlib import Path

import typer

from proctor.audit import VerifyKey
from proctor.cli._common import console, err_console, fails_clearly, runtime
from proctor.errors import ConfigError

app = typer.Typer(
    help="Verify the audit log; export the public key that checks it.", no_args_is_help=True
)


@app.command("verify")
@fails_clearly
def verify(
    tenant: str | None = typer.Option(None, help="Only this tenant's chain."),
    public_key: list[Path] = typer.Option(
        [], "--public-key", help="More PEM public keys that signed older checkpoints."
    ),
) -> None:
    """Check every entry's hash, every link and every checkpoint signature. Exit 1 on tampering."""
    rt = runtime(None)
    keys = [VerifyKey.from_pem(_read(p), str(p)) for p in public_key]
    report = rt.verify_audit(tenant=tenant, extra_keys=keys)
    if report.ok:
        console.print(
            f"[green]OK[/]: verified {report.checked} entries in {report.tenants} chain(s), "
            f"{report.checkpoints} signed checkpoint(s)."
        )
        if report.purged:
            # Purged payloads are retention at work, not tampering: say which.
            console.print(f"{len(report.purged)} payload(s) purged by retention:")
            for purged in report.purged[:10]:
                console.print(f"  {purged}", highlight=False, markup=False)
            if len(report.purged) > 10:
                console.print(f"  … and {len(report.purged) - 10} more")
        return
    first = report.problems[0]
    err_console.print(f"[bold red]TAMPERED[/]: {first}", highlight=False)
    for problem in report.problems[1:10]:
        err_console.print(f"  also: {problem}", highlight=False)
    if len(report.problems) > 10:
        err_console.print(f"  … and {len(report.problems) - 10} more")
    err_console.print(f"Checked {report.checked} entries; {len(report.problems)} problem(s).")
    raise typer.Exit(1)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the public key {path}: {exc.strerror}") from exc


@app.command("public-key")
@fails_clearly
def public_key() -> None:
    """Print the PEM public key that verifies this deployment's checkpoints."""
    print(runtime(None).key.verify_key.pem(), end="")
