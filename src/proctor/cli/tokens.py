"""``proctor tokens``: bearer tokens for the service, shown once and stored as hashes."""

from __future__ import annotations

import typer

from proctor.cli._common import compact_table, console, fails_clearly, print_json, runtime
from proctor.server.tokens import Role, create_token, list_tokens, revoke_token

app = typer.Typer(help="Create, list and revoke the service's bearer tokens.", no_args_is_help=True)


@app.command("create")
@fails_clearly
def create(
    name: str = typer.Option(..., help="Who holds it: the name approvals are recorded under."),
    role: Role = typer.Option(..., help="viewer reads; approver also decides; admin does all."),
    tenant: str | None = typer.Option(None, help="Confine it to this tenant (default: all)."),
    policy_role: list[str] = typer.Option(
        [],
        "--policy-role",
        help="A policy role its holder approves in, e.g. supervisor (repeatable).",
    ),
) -> None:
    """Create a token and print it once: only its hash is stored."""
    rt = runtime(None)
    try:
        secret, token = create_token(
            rt.store, name, role, tenant, rt.clock.now(), policy_roles=policy_role
        )
    finally:
        rt.close()
    scope = f"tenant {token.tenant}" if token.tenant else "all tenants"
    decides = f", approves as {', '.join(token.policy_roles)}" if token.policy_roles else ""
    console.print(
        f"Token {token.name} ({token.role}, {scope}{decides}). It is shown only this once:"
    )
    console.print(secret, markup=False, highlight=False, soft_wrap=True)


@app.command("list")
@fails_clearly
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print the tokens as JSON."),
) -> None:
    """Every token with its role and tenant; never a secret."""
    rt = runtime(None)
    try:
        tokens = list_tokens(rt.store)
    finally:
        rt.close()
    if as_json:
        print_json(
            [
                {
                    "name": t.name,
                    "role": t.role.value,
                    "tenant": t.tenant,
                    "policy_roles": list(t.policy_roles),
                    "created_at": t.created_at.isoformat(),
                    "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                }
                for t in tokens
            ]
        )
        return
    table = compact_table("name", "role", "tenant", "policy roles", "created", "revoked")
    for t in tokens:
        table.add_row(
            t.name,
            t.role.value,
            t.tenant or "(all)",
            ", ".join(t.policy_roles),
            f"{t.created_at:%Y-%m-%d %H:%M}",
            f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
        )
    console.print(table if tokens else "No tokens.")


@app.command("revoke")
@fails_clearly
def revoke(name: str = typer.Argument(..., help="The token's name.")) -> None:
    """Revoke a token: it stops working at once."""
    rt = runtime(None)
    try:
        token = revoke_token(rt.store, name, rt.clock.now())
    finally:
        rt.close()
    console.print(f"Token {token.name} is revoked.")
