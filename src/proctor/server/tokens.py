"""Bearer tokens for the service: shown once, stored only as a SHA-256 hash.

A token has a name (the identity its holder acts under, e.g. in approvals), a
role (viewer, approver or admin), a tenant it is confined to (or none for all
tenants) and the policy roles its holder may approve in (``supervisor``,
``security``...: the roles a bundle's ``@approval`` annotations name). A service
role lets a token decide at all; a policy role says which requests. Revoking
keeps the row, so a name is never reused by mistake.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from proctor.errors import TokenError, TokenNotFound
from proctor.ids import identity_key, name_problem
from proctor.store import Store
from proctor.store.tables import api_tokens

PREFIX = "pct_"


class Role(StrEnum):
    """What a token may do: read, also decide approvals, or everything."""

    VIEWER = "viewer"
    APPROVER = "approver"
    ADMIN = "admin"


@dataclass(frozen=True)
class ApiToken:
    """A token as stored: never its secret."""

    name: str
    role: Role
    tenant: str | None
    created_at: datetime
    revoked_at: datetime | None
    policy_roles: tuple[str, ...] = ()
    """The approval roles its holder may decide in."""

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def sees(self, tenant: str) -> bool:
        """Whether this token may see the tenant's runs, approvals and costs."""
        return self.tenant is None or self.tenant == tenant


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _token(row: Any) -> ApiToken:
    m = row._mapping
    return ApiToken(
        name=m["name"],
        role=Role(m["role"]),
        tenant=m["tenant"],
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        policy_roles=tuple(m["policy_roles"] or ()),
    )


_COLUMNS = (
    api_tokens.c.name,
    api_tokens.c.role,
    api_tokens.c.tenant,
    api_tokens.c.policy_roles,
    api_tokens.c.created_at,
    api_tokens.c.revoked_at,
)


def create_token(
    store: Store,
    name: str,
    role: Role,
    tenant: str | None,
    now: datetime,
    policy_roles: Sequence[str] = (),
) -> tuple[str, ApiToken]:
    """A new token: returns its secret (shown once, never stored) and its record."""
    if not identity_key(name):
        raise TokenError("give the token a name; it is the identity its holder acts under")
    for value, what in ((name, "token name"), (tenant, "tenant")):
        problem = None if value is None else name_problem(value, what)
        if problem is not None:
            raise TokenError(problem)
    roles = tuple(dict.fromkeys(r.strip() for r in policy_roles))
    if any(not r for r in roles):
        raise TokenError("a policy role cannot be empty; name it as the bundle does (supervisor)")
    if roles and role is Role.VIEWER:
        raise TokenError(
            "a viewer token cannot hold policy roles: it never decides; use --role approver"
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    with store.write() as conn:
        # Names are identities (approvals compare them so): one token per person, however
        # the name is spelled; the table is small enough to compare in Python.
        key = identity_key(name)
        names = conn.execute(sa.select(api_tokens.c.name)).scalars()
        taken = [n for n in names if identity_key(n) == key]
        if taken:
            raise TokenError(
                f"a token named {taken[0]} already exists (revoked tokens keep their name); "
                "choose another name"
            )
        conn.execute(
            api_tokens.insert(),
            {
                "name": name,
                "token_hash": hash_secret(secret),
                "role": role.value,
                "tenant": tenant,
                "policy_roles": list(roles),
                "created_at": now,
                "revoked_at": None,
            },
        )
    return secret, ApiToken(name, role, tenant, now, None, roles)


def verify_token(store: Store, secret: str) -> ApiToken | None:
    """The live token with this secret, or None for an unknown or revoked one."""
    if not secret.startswith(PREFIX):
        return None
    return live_token(store, hash_secret(secret))


def live_token(store: Store, digest: str) -> ApiToken | None:
    """The token whose secret hashes to ``digest``, as it is now; None when it is unknown
    or revoked (a page session holds only the hash, and looks the token up each time)."""
    query = sa.select(*_COLUMNS, api_tokens.c.token_hash).where(api_tokens.c.token_hash == digest)
    with store.read() as conn:
        row = conn.execute(query).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    token = _token(row)
    return None if token.revoked else token


def list_tokens(store: Store) -> Sequence[ApiToken]:
    """Every token, revoked ones too, oldest first; never a secret."""
    query = sa.select(*_COLUMNS).order_by(api_tokens.c.created_at, api_tokens.c.name)
    with store.read() as conn:
        return [_token(r) for r in conn.execute(query)]


def revoke_token(store: Store, name: str, now: datetime) -> ApiToken:
    """Revoke a token by name: it stops working at once. Revoking twice is harmless."""
    with store.write() as conn:
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        row = conn.execute(sa.select(*_COLUMNS).where(api_tokens.c.name == name)).first()
    if row is None:
        raise TokenNotFound(f"no token named {name}; `proctor tokens list` shows them")
    return _token(row)
