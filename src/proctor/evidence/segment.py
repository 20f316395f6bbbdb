"""The audit chain in an evidence bundle: each tenant's segment, from its first entry in
the range (or the first entry of a run or approval the bundle lists) to a signed
checkpoint at or after the last one (and after any purge record a purged payload in
the range points to), so the segment re-verifies offline and its end is covered by a
signature. When no checkpoint covers the range's end yet, the head is signed first,
by the signer, which refuses a chain it cannot verify.

Before the bundle is signed, each segment is verified with the deployment's key,
with the heads of the anchor it spans; a chain that does not verify is not exported.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from proctor.audit.anchor import AnchorFile
from proctor.audit.events import EntryKind
from proctor.audit.records import Checkpoint, Envelope
from proctor.audit.verify import check_chain, purge_of, stored_entries
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
    rt: Runtime,
    tenant: str,
    start: str,
    end: str,
    signed_heads: list[str],
    *,
    runs: Collection[str] = (),
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """The tenant's chain from its first entry in the range (or of ``runs``) to a
    checkpoint covering it; ``EvidenceError`` when it does not verify."""
    with rt.store.read() as conn:
        bounds = _bounds(conn, tenant, start, end, runs)
        if bounds is None:
            return None
        first, last = bounds
        target = max(last, _last_purge_record(conn, tenant, first, last))
        signed = _checkpoint_from(conn, tenant, target)
    if signed is None:
        with rt.store.write() as conn:
            rt.audit.checkpoint(conn, tenant)
        signed_heads.append(tenant)
        with rt.store.read() as conn:
            signed = _checkpoint_from(conn, tenant, target)
    if signed is None:
        raise fmt.EvidenceError(
            f"no signed checkpoint covers tenant {tenant}'s entry {target}, and the signer "
            "refused to sign its head: the audit chain does not verify. Run "
            "`proctor audit verify` to see what changed; nothing was exported."
        )
    with rt.store.read() as conn:
        rows = conn.execute(
            stored_entries(tenant).where(
                audit_entries.c.seq >= first, audit_entries.c.seq <= signed
            )
        ).all()
        checkpoints = [
            Checkpoint.of_row(c)
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
        anchored = _anchored(rt, tenant)
        spanned = [a for a in anchored if first <= a.seq <= signed]
        _verify(rt, tenant, rows, checkpoints, spanned)
        _extends_anchor(conn, tenant, anchored)
    lines = [_line(r) for r in rows]
    chain = {
        "first_seq": first,
        "last_seq": int(signed),
        "range_seqs": [first, last],
        "anchor": {"seq": first - 1, "hash": rows[0].prev_hash},
        "head": {"seq": int(head.seq), "hash": head.head_hash},
        "checkpoints": [_checkpoint_json(c) for c in checkpoints],
        "anchored": [_checkpoint_json(a) for a in spanned],
    }
    return chain, lines


def _bounds(
    conn: sa.Connection, tenant: str, start: str, end: str, runs: Collection[str]
) -> tuple[int, int] | None:
    """The first and last entry the segment must hold: the range's, and its runs' own."""
    seq = audit_entries.c.seq
    found = [
        conn.execute(
            sa.select(sa.func.min(seq), sa.func.max(seq)).where(
                audit_entries.c.tenant == tenant,
                audit_entries.c.created_at >= start,
                audit_entries.c.created_at < end,
            )
        ).one()
    ]
    if runs:
        found.append(
            conn.execute(
                sa.select(sa.func.min(seq), sa.func.max(seq)).where(
                    audit_entries.c.tenant == tenant, audit_entries.c.run_id.in_(sorted(runs))
                )
            ).one()
        )
    firsts = [int(f) for f, _ in found if f is not None]
    lasts = [int(x) for _, x in found if x is not None]
    return (min(firsts), max(lasts)) if firsts else None


def _anchored(rt: Runtime, tenant: str) -> list[Checkpoint]:
    anchor = rt.audit.anchor
    if not isinstance(anchor, AnchorFile):
        return []
    return [a for a in anchor.read().heads if a.tenant == tenant]


def _verify(
    rt: Runtime,
    tenant: str,
    rows: Sequence[Any],
    checkpoints: list[Checkpoint],
    anchored: list[Checkpoint],
) -> None:
    """The segment verifies with the deployment's key, or nothing is signed."""
    entries = [Envelope.of_row(r) for r in rows]
    purges = {r.entry_id: p for r in rows if (p := purge_of(r)) is not None}
    payloads = {r.entry_id: r.body for r in rows if r.body is not None and r.entry_id not in purges}
    result = check_chain(
        tenant,
        entries,
        payloads,
        checkpoints,
        [rt.key.verify_key],
        None,
        purges=purges,
        after=(entries[0].seq - 1, entries[0].prev_hash),
        anchored=anchored,
    )
    if result.problems:
        raise fmt.EvidenceError(
            f"the audit chain does not verify, so no evidence was signed: {result.problems[0]}"
            + (f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else "")
            + ". Run `proctor audit verify` to see every problem."
        )


def _extends_anchor(conn: sa.Connection, tenant: str, anchored: list[Checkpoint]) -> None:
    """The database still holds the furthest head the anchor holds."""
    if not anchored:
        return
    furthest = max(anchored, key=lambda a: a.seq)
    stored = conn.execute(
        sa.select(audit_entries.c.entry_hash).where(
            audit_entries.c.tenant == tenant, audit_entries.c.seq == furthest.seq
        )
    ).scalar()
    if stored != furthest.head_hash:
        raise fmt.EvidenceError(
            f"tenant {tenant}'s chain no longer holds the head anchored at entry "
            f"{furthest.seq}: it was cut short or rewritten, so no evidence was signed. "
            "Run `proctor audit verify --anchor` to see what changed."
        )


def _checkpoint_json(checkpoint: Checkpoint) -> dict[str, Any]:
    return {k: v for k, v in checkpoint.to_json().items() if k != "tenant"}


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
