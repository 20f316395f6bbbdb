"""The signer's guard: a chain head is signed only once the signer has verified it.

Before each checkpoint the signer verifies every entry since the last point it
trusts: what it verified itself earlier in this process, or else the last
checkpoint it can verify with its own key. Every checkpoint since must verify with
that key and follow the chain of checkpoints; every entry must link, hash and
match its payload; the last run end before the head must be signed (a missing
signature means checkpoints were removed); and the head must extend the last head
the anchor holds. Anything else is a :class:`Refusal`, and nothing is signed.

The cost is one read of the checkpoints after the trusted point (usually none) and
one of the entries since: a run's worth of hashes on each run end.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from proctor.audit.keys import VerifyKey
from proctor.audit.records import GENESIS, Checkpoint, Envelope
from proctor.audit.verify import (
    check_chain,
    last_run_end,
    link_problem,
    purge_of,
    signed_form,
    stored_entries,
)
from proctor.store.tables import audit_checkpoints, audit_entries


@dataclass(frozen=True)
class Verified:
    """A head the signer verified: entry ``seq`` has hash ``hash``, and ``checkpoint`` is
    the chain's last checkpoint up to there (``None`` before the first)."""

    seq: int
    hash: str
    checkpoint: Checkpoint | None


@dataclass(frozen=True)
class Refusal:
    """Why the signer will not sign: the chain does not extend what it trusts."""

    reason: str


def extends(
    conn: sa.Connection,
    tenant: str,
    key: VerifyKey,
    trusted: Verified | None,
    head: tuple[int, str],
    anchored: Checkpoint | None = None,
) -> Verified | Refusal:
    """Does the tenant's chain, up to ``head``, extend ``trusted`` (or, without it, the
    last checkpoint ``key`` verifies, and the ``anchored`` head)?"""
    start = _start(conn, tenant, key, trusted, anchored)
    if isinstance(start, Refusal):
        return start
    checkpoints = _checkpoints_after(conn, tenant, start)
    last = _follow(start.checkpoint, checkpoints, key)
    if isinstance(last, Refusal):
        return last
    since = _entries_since(conn, tenant, start, head)
    if isinstance(since, Refusal):
        return since
    refusal = _unsigned(checkpoints, last, head, *since) or (
        _anchor_extended(conn, tenant, anchored, head, since[0])
        if anchored is not None and anchored.key_id == key.key_id
        else None
    )
    return refusal or Verified(head[0], head[1], last)


def _start(
    conn: sa.Connection,
    tenant: str,
    key: VerifyKey,
    trusted: Verified | None,
    anchored: Checkpoint | None,
) -> Verified | Refusal:
    """What the signer trusts: its own memory, else its last checkpoint (not behind the anchor)."""
    if trusted is not None:
        return trusted
    found = _last_own_checkpoint(conn, tenant, key)
    if isinstance(found, Refusal) or anchored is None:
        return found
    return _behind_anchor(found, anchored, key) or found


_Since = tuple[list[Envelope], dict[str, str | bytes]]


def _entries_since(
    conn: sa.Connection, tenant: str, start: Verified, head: tuple[int, str]
) -> _Since | Refusal:
    """The entries after ``start`` up to ``head`` and their payloads, once they verify."""
    rows = conn.execute(
        stored_entries(tenant).where(
            audit_entries.c.seq >= start.seq, audit_entries.c.seq <= head[0]
        )
    ).all()
    entries = [Envelope.of_row(r) for r in rows]
    if start.seq > 0:
        if not entries or entries[0].seq != start.seq:
            return Refusal(f"entry {start.seq}, verified before, is gone")
        if entries[0].entry_hash != start.hash:
            return Refusal(f"entry {start.seq} was rewritten after it was verified")
        entries, rows = entries[1:], rows[1:]
    purges = {r.entry_id: p for r in rows if (p := purge_of(r)) is not None}
    payloads = {r.entry_id: r.body for r in rows if r.body is not None and r.entry_id not in purges}
    result = check_chain(
        tenant,
        entries,
        payloads,
        [],
        [],
        head,
        purges=purges,
        after=(start.seq, start.hash),
        signed_ends=False,
    )
    if result.problems:
        return Refusal(str(result.problems[0]))
    return entries, payloads


def _unsigned(
    checkpoints: list[Checkpoint],
    last: Checkpoint | None,
    head: tuple[int, str],
    entries: list[Envelope],
    payloads: dict[str, str | bytes],
) -> Refusal | None:
    """A checkpoint over another head, or a run end before ``head`` that none covers."""
    by_seq = {e.seq: e for e in entries}
    for cp in checkpoints:
        entry = by_seq.get(cp.seq)
        if entry is None or entry.entry_hash != cp.head_hash:
            return Refusal(f"the checkpoint at entry {cp.seq} does not match the chain")
    end = last_run_end([e for e in entries if e.seq < head[0]], payloads)
    if end is not None and end.seq > (last.seq if last is not None else 0):
        return Refusal(
            f"run {end.run_id} ended at entry {end.seq} but no checkpoint covers it: "
            "checkpoints were removed"
        )
    return None


def _last_own_checkpoint(conn: sa.Connection, tenant: str, key: VerifyKey) -> Verified | Refusal:
    row = conn.execute(
        sa.select(audit_checkpoints)
        .where(audit_checkpoints.c.tenant == tenant, audit_checkpoints.c.key_id == key.key_id)
        .order_by(audit_checkpoints.c.seq.desc())
        .limit(1)
    ).first()
    if row is None:
        return Verified(0, GENESIS, None)
    cp = signed_form(Checkpoint.of_row(row), key)
    if cp is None:
        return Refusal(f"the latest checkpoint under this key, at entry {row.seq}, does not verify")
    return Verified(cp.seq, cp.head_hash, cp)


def _checkpoints_after(conn: sa.Connection, tenant: str, trusted: Verified) -> list[Checkpoint]:
    after = trusted.checkpoint.seq if trusted.checkpoint is not None else 0
    return [
        Checkpoint.of_row(r)
        for r in conn.execute(
            sa.select(audit_checkpoints)
            .where(audit_checkpoints.c.tenant == tenant, audit_checkpoints.c.seq > after)
            .order_by(audit_checkpoints.c.seq)
        )
    ]


def _follow(
    prev: Checkpoint | None, checkpoints: list[Checkpoint], key: VerifyKey
) -> Checkpoint | Refusal | None:
    """The last of ``checkpoints`` when each verifies and follows the one before.

    A checkpoint under another key is accepted only before any of this key's (a key
    rotated since): it cannot be verified here, only checked against the chain."""
    own_seen = prev is not None and prev.key_id == key.key_id
    for stored in checkpoints:
        cp = stored
        if cp.key_id == key.key_id:
            signed = signed_form(cp, key)
            if signed is None:
                return Refusal(f"the checkpoint at entry {cp.seq} does not verify")
            cp, own_seen = signed, True
        elif own_seen:
            return Refusal(
                f"the checkpoint at entry {cp.seq} is signed by key {cp.key_id}, "
                f"not by this deployment's key {key.key_id}"
            )
        problem = link_problem(prev, cp)
        if problem is not None:
            return Refusal(f"the checkpoint at entry {cp.seq}: {problem[1]}")
        prev = cp
    return prev


def _behind_anchor(trusted: Verified, anchored: Checkpoint, key: VerifyKey) -> Refusal | None:
    if anchored.key_id != key.key_id or signed_form(anchored, key) is None:
        return None  # not this key's: the auditor's verify reports it
    if anchored.seq > trusted.seq:
        return Refusal(
            f"the anchor holds a checkpoint at entry {anchored.seq} that the database no "
            f"longer has (its last is at {trusted.seq}): checkpoints were removed or the "
            "chain was cut short"
        )
    return None


def _anchor_extended(
    conn: sa.Connection,
    tenant: str,
    anchored: Checkpoint,
    head: tuple[int, str],
    entries: list[Envelope],
) -> Refusal | None:
    by_seq = {e.seq: e for e in entries}
    if anchored.seq > head[0]:
        return Refusal(
            f"the chain ends at {head[0]} but the anchor holds its head at {anchored.seq}"
        )
    entry = by_seq.get(anchored.seq)
    stored = (
        entry.entry_hash
        if entry is not None
        else conn.execute(
            sa.select(audit_entries.c.entry_hash).where(
                audit_entries.c.tenant == tenant, audit_entries.c.seq == anchored.seq
            )
        ).scalar()
    )
    if stored != anchored.head_hash:
        return Refusal(f"entry {anchored.seq} differs from the head the anchor holds")
    return None
