"""``proctor audit``: verify the hash-chained log and its signed checkpoints."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
import typer

from proctor.audit import AnchorFile, AnchorRead, SigningKey, VerifyKey, verify_store
from proctor.cli._common import console, err_console, fails_clearly, runtime
from proctor.errors import ConfigError, StoreError
from proctor.settings import Settings, load_settings
from proctor.store import Store

app = typer.Typer(
    help="Verify the audit log; export the public key that checks it.", no_args_is_help=True
)


@app.command("verify")
@fails_clearly
def verify(
    tenant: str | None = typer.Option(None, help="Only this tenant's chain."),
    public_key: list[Path] = typer.Option(
        [],
        "--public-key",
        help="The deployment's PEM public key (`proctor audit public-key`); only checkpoints "
        "it signed count. Repeat for a key rotated out. Default: the key file's public part.",
    ),
    anchor: Path | None = typer.Option(
        None,
        "--anchor",
        help="A file of signed heads (PROCTOR_AUDIT_ANCHOR): the database must still extend "
        "every one. Default: PROCTOR_AUDIT_ANCHOR, if set.",
    ),
) -> None:
    """Check every entry's hash, every link and every checkpoint signature. Exit 1 on tampering.

    Reads only: it generates no key and migrates nothing, so it can run on a copy."""
    settings = load_settings()
    keys = [VerifyKey.from_pem(_read(p), str(p)) for p in public_key] or [_own_key(settings)]
    anchored = _anchor(anchor, settings)
    store = _open(settings)
    try:
        with store.read() as conn:
            report = verify_store(conn, keys, tenant, anchor=anchored)
    finally:
        store.close()
    if report.ok:
        console.print(
            f"[green]OK[/]: verified {report.checked} entries in {report.tenants} chain(s), "
            f"{report.checkpoints} signed checkpoint(s)."
        )
        if anchored is not None:
            console.print(
                f"The database extends all {report.anchored} head(s) anchored in "
                f"{anchored.source}.",
                highlight=False,
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


def _own_key(settings: Settings) -> VerifyKey:
    """The public part of the deployment's key file; never creates one."""
    path = settings.key_path
    if not path.exists():
        raise ConfigError(
            f"no audit key at {path}: pass --public-key with the deployment's public key "
            "(`proctor audit public-key` prints it where the key is)"
        )
    return SigningKey.load(path).verify_key


def _anchor(given: Path | None, settings: Settings) -> AnchorRead | None:
    if given is not None and not given.is_file():
        raise ConfigError(f"cannot read the audit anchor {given}: no such file")
    path = given or settings.audit_anchor
    return None if path is None else AnchorFile(path).read()


def _open(settings: Settings) -> Store:
    """The store as it is: not created, not migrated."""
    url = sa.engine.make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        raise StoreError(
            f"no store at {url.database}: set PROCTOR_HOME or PROCTOR_DB_URL to the one to verify"
        )
    return Store(settings.database_url, migrate=False)


@app.command("public-key")
@fails_clearly
def public_key() -> None:
    """Print the PEM public key that verifies this deployment's checkpoints."""
    print(runtime(None).key.verify_key.pem(), end="")
