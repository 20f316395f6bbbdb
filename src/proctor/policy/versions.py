"""The files of every policy bundle version a runtime used, kept from its first use.

Runs and audit entries name their bundle as ``label@digest``; an auditor asking
"which policy decided this?" months later needs that bundle's files, which may
have changed on disk since. A runtime records its bundle when it opens it (one
insert, skipped when the version is already there).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from proctor.policy.bundle import PolicyBundle
from proctor.store import Store
from proctor.store.tables import policy_bundles


@dataclass(frozen=True)
class StoredBundle:
    version: str
    label: str
    digest: str
    files: Mapping[str, bytes]
    first_used_at: datetime


def record_bundle_version(store: Store, bundle: PolicyBundle, now: datetime) -> None:
    """Keep ``bundle``'s files under its version unless they are kept already."""
    version = str(bundle.version)
    with store.read() as conn:
        known = conn.execute(
            sa.select(policy_bundles.c.version).where(policy_bundles.c.version == version)
        ).first()
    if known is not None:
        return
    insert = (postgresql.insert if store.dialect == "postgresql" else sqlite.insert)(policy_bundles)
    with store.write() as conn:
        conn.execute(
            insert.values(
                version=version,
                label=bundle.version.label,
                digest=bundle.version.digest,
                files={p: base64.b64encode(c).decode() for p, c in sorted(bundle.files.items())},
                first_used_at=now,
            ).on_conflict_do_nothing()
        )


def stored_bundles(conn: sa.Connection, versions: set[str] | None = None) -> list[StoredBundle]:
    """The kept bundle versions (or those of ``versions`` that are kept), oldest first."""
    query = sa.select(policy_bundles).order_by(policy_bundles.c.first_used_at)
    if versions is not None:
        query = query.where(policy_bundles.c.version.in_(sorted(versions)))
    return [
        StoredBundle(
            r.version,
            r.label,
            r.digest,
            {p: base64.b64decode(c) for p, c in r.files.items()},
            r.first_used_at,
        )
        for r in conn.execute(query)
    ]
