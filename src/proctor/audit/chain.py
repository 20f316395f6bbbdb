"""The hash-chained audit log: one chain per tenant, payloads stored apart.

Each entry's envelope commits to the hash of its payload and to the previous
entry's hash. Payloads live in their own table so retention can purge them
while the chain of envelopes still verifies. Checkpoints sign a chain head with
the audit key, so rewriting history before a checkpoint is detectable even by
someone who recomputes every hash.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from proctor.audit.anchor import AnchorFile, AnchorSink
from proctor.audit.events import AuditEvent
from proctor.audit.guard import Refusal, Verified, extends
from proctor.audit.keys import SigningKey
from proctor.audit.records import (
    GENESIS,
    Checkpoint,
    Envelope,
    checkpoint_message,
    envelope_hash,
    timestamp,
)
from proctor.clock import Clock
from proctor.ids import new_id
from proctor.jsonvalue import canonical_json, sha256_hex
from proctor.store.prepared import Prepared
from proctor.store.tables import (
    audit_checkpoints,
    audit_entries,
    audit_heads,
    audit_payloads,
    audit_refusals,
)

__all__ = [
    "GENESIS",
    "AuditLog",
    "Checkpoint",
    "Envelope",
    "checkpoint_message",
    "envelope_hash",
    "timestamp",
]

log = logging.getLogger("proctor.audit")

_AFTER_COMMIT = "proctor.audit.after_commit"


_advance_head = Prepared(
    audit_heads.update()
    .where(audit_heads.c.tenant == sa.bindparam("t"), audit_heads.c.seq == sa.bindparam("old"))
    .values(seq=sa.bindparam("new"), head_hash=sa.bindparam("h")),
    audit_heads,
)
_insert_entry = Prepared(audit_entries.insert(), audit_entries)
_insert_payload = Prepared(audit_payloads.insert(), audit_payloads)
_read_head = sa.select(audit_heads.c.seq, audit_heads.c.head_hash).where(
    audit_heads.c.tenant == sa.bindparam("t")
)


class AuditLog:
    """Appends entries. Safe with several workers: the head row serialises each tenant's chain.

    Signs a checkpoint only over a chain it has verified (see ``proctor.audit.guard``);
    a chain that does not extend what it trusts is left unsigned, with an error logged
    and the refusal counted in ``audit_refusals``, while the caller's transaction goes
    on. With ``anchor``, every checkpoint is also appended there once it commits.
    """

    def __init__(
        self,
        key: SigningKey,
        clock: Clock,
        *,
        checkpoint_every: int = 1000,
        anchor: AnchorSink | None = None,
    ) -> None:
        self.key = key
        self.clock = clock
        self.checkpoint_every = checkpoint_every
        self.anchor = anchor
        # Last head seen per tenant: a guess that saves a read; a stale guess costs a retry.
        self._heads: dict[str, tuple[int, str]] = {}
        # Last head this process verified and signed, per tenant, once committed: trusted
        # over anything the database says later.
        self._verified: dict[str, Verified] = {}
        self._anchored: dict[str, Checkpoint] | None = None

    def append(
        self,
        conn: sa.Connection,
        tenant: str,
        event: AuditEvent,
        *,
        run_id: str | None,
        step: int | None,
        bundle_version: str,
        redact: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Envelope:
        """Add one entry in the caller's transaction; it is durable when that commits.

        Payloads are stored as given: the caller redacts what it built from a person's or
        a tool's words, or passes ``redact`` to run on the payload before it is hashed, so
        the chain commits to what is stored."""
        payload = event.payload()
        if redact is not None:
            payload = redact(payload)
        body = canonical_json(payload)
        payload_hash = sha256_hex(body)
        now = self.clock.now()
        entry = Envelope(
            tenant,
            0,
            new_id("aud"),
            event.kind.value,
            run_id,
            step,
            timestamp(now),
            bundle_version,
            payload_hash,
            "",
            "",
        )
        seq, prev_hash = self._heads.get(tenant) or self._load_head(conn, tenant)
        for _ in range(2):
            entry = entry.linked(seq + 1, prev_hash)
            moved = _advance_head.execute(
                conn, {"t": tenant, "old": seq, "new": entry.seq, "h": entry.entry_hash}
            )
            if moved == 1:
                break
            seq, prev_hash = self._load_head(conn, tenant)
        else:  # pragma: no cover - the head was locked by _load_head, so the retry cannot miss
            raise RuntimeError(f"audit head of tenant {tenant} moved while locked")
        _insert_entry.execute(conn, vars(entry))
        _insert_payload.execute(
            conn, {"entry_id": entry.entry_id, "tenant": tenant, "created_at": now, "body": body}
        )
        self._heads[tenant] = (entry.seq, entry.entry_hash)
        if entry.seq % self.checkpoint_every == 0:
            self._sign(conn, tenant, entry.seq, entry.entry_hash)
        return entry

    def lock_heads(self, conn: sa.Connection, tenants: list[str]) -> None:
        """Lock these tenants' chain heads for the caller's transaction, in tenant order
        (PostgreSQL): appends in it then never wait, nor deadlock with another writer."""
        if tenants and conn.dialect.name == "postgresql":
            conn.execute(
                sa.select(audit_heads.c.tenant)
                .where(audit_heads.c.tenant.in_(tenants))
                .order_by(audit_heads.c.tenant)
                .with_for_update()
            ).all()

    def checkpoint(self, conn: sa.Connection, tenant: str) -> None:
        """Sign the tenant's current head (a no-op when it is signed already)."""
        seq, head = self._load_head(conn, tenant)
        if seq == 0:
            return
        exists = conn.execute(
            sa.select(audit_checkpoints.c.seq).where(
                audit_checkpoints.c.tenant == tenant, audit_checkpoints.c.seq == seq
            )
        ).first()
        if exists is None:
            self._sign(conn, tenant, seq, head)

    def _sign(self, conn: sa.Connection, tenant: str, seq: int, head: str) -> None:
        verified = extends(
            conn,
            tenant,
            self.key.verify_key,
            self._verified.get(tenant),
            (seq, head),
            self._anchored_head(tenant) if tenant not in self._verified else None,
        )
        if isinstance(verified, Refusal):
            self._refuse(conn, tenant, seq, verified.reason)
            return
        prev = verified.checkpoint
        checkpoint = Checkpoint(
            tenant,
            seq,
            head,
            timestamp(self.clock.now()),
            self.key.key_id,
            "",
            (prev.number or 0) + 1 if prev is not None and prev.linked else 1,
            prev.hash if prev is not None else GENESIS,
        )
        checkpoint = replace(checkpoint, signature=self.key.sign(checkpoint.message()))
        conn.execute(audit_checkpoints.insert(), checkpoint.to_json())
        signed = Verified(seq, head, checkpoint)

        def committed() -> None:
            self._verified[tenant] = signed
            if self.anchor is not None:
                self.anchor.append(checkpoint)
                if self._anchored is not None:
                    self._anchored[tenant] = checkpoint

        _after_commit(conn, committed)

    def _refuse(self, conn: sa.Connection, tenant: str, seq: int, reason: str) -> None:
        """Withhold the signature, loudly; the caller's transaction (a run's end) goes on."""
        log.error(
            "refused to sign tenant %s's audit chain at entry %d: %s. The entries are "
            "stored; only the signature is withheld. Run `proctor audit verify "
            "--public-key KEY` to see what changed.",
            tenant,
            seq,
            reason,
        )
        values = {
            "last_seq": seq,
            "last_at": timestamp(self.clock.now()),
            "last_reason": reason,
        }
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(
            audit_refusals
        )
        conn.execute(
            insert.values(tenant=tenant, refused=1, **values).on_conflict_do_update(
                index_elements=[audit_refusals.c.tenant],
                set_={"refused": audit_refusals.c.refused + 1, **values},
            )
        )

    def _anchored_head(self, tenant: str) -> Checkpoint | None:
        """The anchor's furthest head of ``tenant``, read once per process (a file anchor)."""
        if not isinstance(self.anchor, AnchorFile):
            return None
        if self._anchored is None:
            self._anchored = self.anchor.read().last()
        return self._anchored.get(tenant)

    def _load_head(self, conn: sa.Connection, tenant: str) -> tuple[int, str]:
        """Read the head and lock it for this transaction, creating it for a new tenant."""
        dialect = conn.dialect.name
        insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(audit_heads)
        row = conn.execute(
            _read_head.with_for_update() if dialect == "postgresql" else _read_head, {"t": tenant}
        ).first()
        if row is None:
            conn.execute(
                insert.values(tenant=tenant, seq=0, head_hash=GENESIS).on_conflict_do_nothing()
            )
            row = conn.execute(
                _read_head.with_for_update() if dialect == "postgresql" else _read_head,
                {"t": tenant},
            ).one()
        head = (int(row.seq), str(row.head_hash))
        self._heads[tenant] = head
        return head


def _after_commit(conn: sa.Connection, action: Callable[[], None]) -> None:
    """Run ``action`` when ``conn``'s transaction commits; forget it if it rolls back."""
    conn.info.setdefault(_AFTER_COMMIT, []).append(action)
    if not sa.event.contains(conn, "commit", _run_after_commit):
        sa.event.listen(conn, "commit", _run_after_commit)
        sa.event.listen(conn, "rollback", _drop_after_commit)


def _run_after_commit(conn: sa.Connection) -> None:
    for action in conn.info.pop(_AFTER_COMMIT, []):
        try:
            action()
        except Exception:  # the transaction is committed: a failing anchor must not undo it
            log.exception("could not record a signed audit head after its commit")


def _drop_after_commit(conn: sa.Connection) -> None:
    conn.info.pop(_AFTER_COMMIT, None)
