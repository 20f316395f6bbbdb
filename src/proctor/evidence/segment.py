"""The audit chain in an evidence bundle: each tenant's segment, from its first entry in
the range to a signed checkpoint at or after the last one (and after any purge record a
purged payload in the range points to), so the segment re-verifies offline and its end
is covered by a signature. When no checkpoint covers the range's end yet, the head is
signed first.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from proctor.audit.chain import Envelope
from proctor.audit.events import EntryKind
from proctor.audit.verify import purge_of, stored_entries
from proctor.evidence import format as fmt
from proctor.policy import Decision
from proctor.runs.views import run_tenants
from proctor.runtime import Runtime
from proctor.store.tables import audit_checkpoints, audit_entries, audit_heads, audit_payloads


def tenants_of(conn: sa.Connection, tenant: str | None) -> list[str]:
    """The tenants to export: every one with audit entries or runs, or the one asked for."""
    found = {t for (t,) in conn.execute(sa.select(audit_heads.c.tenant))}
    found |= run_tenants(conn)
    if tenant is None:
        return sorted(found)
    if tenant not in found:
        known = ", ".join(sorted(found)) or "none yet"
        raise fmt.EvidenceError(
            f"no audit entries or runs for tenant {tenant!r} (tenants: {known})"
        )
    return [tenant]


def segment(
    rt: Runtime, tenant: str, start: str, end: str, signed_heads: list[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The tenant's chain from its first entry in the range to a checkpoint covering it."""
    in_range = (
        audit_entries.c.tenant == tenant,
        audit_entries.c.created_at >= start,
        audit_entries.c.created_at < end,
    )
    with rt.store.read() as conn:
        first, last = conn.execute(
            sa.select(sa.func.min(audit_entries.c.seq), sa.func.max(audit_entries.c.seq)).where(
                *in_range
            )
        ).one()
        if first is None:
            return None
        target = max(int(last), _last_purge_record(conn, tenant, int(first), int(last)))
        signed = _checkpoint_from(conn, tenant, target)
    if signed is None:
        with rt.store.write() as conn:
            rt.audit.checkpoint(conn, tenant)
        signed_heads.append(tenant)
        with rt.store.read() as conn:
            signed = _checkpoint_from(conn, tenant, target)
    if signed is None:  # pragma: no cover - the head was just signed, and it is past target
        raise fmt.EvidenceError(f"no signed checkpoint covers tenant {tenant}'s entry {target}")
    with rt.store.read() as conn:
        rows = conn.execute(
            stored_entries(tenant).where(
                audit_entries.c.seq >= first, audit_entries.c.seq <= signed
            )
        ).all()
        checkpoints = [
            {
                "seq": int(c.seq),
                "head_hash": c.head_hash,
                "signed_at": c.signed_at,
                "key_id": c.key_id,
                "signature": c.signature,
            }
            for c in conn.execute(
                sa.select(audit_checkpoints)
                .where(
                    audit_checkpoints.c.tenant == tenant,
                    audit_checkpoints.c.seq >= first,
                    audit_checkpoints.c.seq <= signed,
                )
                .order_by(audit_checkpoints.c.seq)
            )
        ]
        head = conn.execute(
            sa.select(audit_heads.c.seq, audit_heads.c.head_hash).where(
                audit_heads.c.tenant == tenant
            )
        ).one()
    lines = [_line(r) for r in rows]
    chain = {
        "first_seq": int(first),
        "last_seq": int(signed),
        "range_seqs": [int(first), int(last)],
        "anchor": {"seq": int(first) - 1, "hash": rows[0].prev_hash},
        "head": {"seq": int(head.seq), "hash": head.head_hash},
        "checkpoints": checkpoints,
    }
    return chain, lines


def _last_purge_record(conn: sa.Connection, tenant: str, first: int, last: int) -> int:
    """The number of the last purge entry that a purged payload in ``first..last`` points to."""
    purge_ids = sa.select(audit_payloads.c.purge_entry).join(
        audit_entries, audit_entries.c.entry_id == audit_payloads.c.entry_id
    )
    purge_ids = purge_ids.where(
        audit_entries.c.tenant == tenant,
        audit_entries.c.seq >= first,
        audit_entries.c.seq <= last,
        audit_payloads.c.purge_entry.is_not(None),
    )
    found = conn.execute(
        sa.select(sa.func.max(audit_entries.c.seq)).where(
            audit_entries.c.entry_id.in_(purge_ids.scalar_subquery())
        )
    ).scalar()
    return int(found or 0)


def _checkpoint_from(conn: sa.Connection, tenant: str, seq: int) -> int | None:
    found = conn.execute(
        sa.select(sa.func.min(audit_checkpoints.c.seq)).where(
            audit_checkpoints.c.tenant == tenant, audit_checkpoints.c.seq >= seq
        )
    ).scalar()
    return None if found is None else int(found)


def _line(r: Any) -> dict[str, Any]:
    purge = purge_of(r)
    return fmt.entry_line(Envelope.of_row(r), None if purge else r.body, purge)


def is_denial(line: Mapping[str, Any], start: str, end: str) -> bool:
    return (
        line["kind"] == EntryKind.ACTION_DENIED.value
        and start <= line["created_at"] < end
        and line["payload"] is not None
    )


def denial(line: Mapping[str, Any]) -> dict[str, Any]:
    payload = json.loads(line["payload"])
    stored = payload.get("decision") or {}
    decision = Decision.from_stored(stored) if "effect" in stored else None
    return {
        "tenant": line["tenant"],
        "run_id": line["run_id"],
        "step": line["step"],
        "created_at": line["created_at"],
        "tool": payload.get("tool"),
        "reason": decision.reason if decision is not None else None,
        "policy_ids": list(decision.policy_ids) if decision is not None else [],
        "bundle_version": line["bundle_version"],
    }
