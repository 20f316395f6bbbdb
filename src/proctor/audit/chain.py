"""The hash-chained audit log: one chain per tenant, payloads stored apart.

Each entry's envelope commits to the hash of its payload and to the previous
entry's hash. Payloads live in their own table so retention can purge them
while the chain of envelopes still verifies. Checkpoints sign a chain head with
the audit key, so rewriting history before a checkpoint is detectable even by
someone who recomputes every hash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from proctor.audit.events import AuditEvent
from proctor.audit.keys import SigningKey
from proctor.clock import Clock
from proctor.ids import new_id
from proctor.jsonvalue import canonical_json, sha256_hex
from proctor.store.prepared import Prepared
from proctor.store.tables import audit_checkpoints, audit_entries, audit_heads, audit_payloads

GENESIS = "0" * 64


@dataclass(frozen=True)
class Envelope:
    """The chained part of an entry. Never changes once written."""

    tenant: str
    seq: int
    entry_id: str
    kind: str
    run_id: str | None
    step: int | None
    created_at: str
    bundle_version: str
    payload_hash: str
    prev_hash: str
    entry_hash: str

    @classmethod
    def of_row(cls, row: Any) -> Envelope:
        """The envelope of an ``audit_entries`` row (extra columns are ignored)."""
        return cls(
            row.tenant,
            int(row.seq),
            row.entry_id,
            row.kind,
            row.run_id,
            row.step,
            row.created_at,
            row.bundle_version,
            row.payload_hash,
            row.prev_hash,
            row.entry_hash,
        )

    def linked(self, seq: int, prev_hash: str) -> Envelope:
        """This entry numbered ``seq`` after ``prev_hash``, with its own hash computed."""
        fields = {**vars(self), "seq": seq, "prev_hash": prev_hash, "entry_hash": ""}
        fields["entry_hash"] = envelope_hash(*[*fields.values()][:-1])
        return Envelope(**fields)

    def computed_hash(self) -> str:
        """The hash of every field but the hash itself (fields in declaration order)."""
        return envelope_hash(*[*vars(self).values()][:-1])


def envelope_hash(
    tenant: str,
    seq: int,
    entry_id: str,
    kind: str,
    run_id: str | None,
    step: int | None,
    created_at: str,
    bundle_version: str,
    payload_hash: str,
    prev_hash: str,
) -> str:
    return sha256_hex(
        canonical_json(
            [
                tenant,
                seq,
                entry_id,
                kind,
                run_id,
                step,
                created_at,
                bundle_version,
                payload_hash,
                prev_hash,
            ]
        )
    )


def checkpoint_message(tenant: str, seq: int, head_hash: str, signed_at: str, key_id: str) -> bytes:
    return canonical_json(
        {
            "tenant": tenant,
            "seq": seq,
            "head_hash": head_hash,
            "signed_at": signed_at,
            "key_id": key_id,
        }
    ).encode()


def timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


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
    """Appends entries. Safe with several workers: the head row serialises each tenant's chain."""

    def __init__(
        self,
        key: SigningKey,
        clock: Clock,
        *,
        checkpoint_every: int = 1000,
    ) -> None:
        self.key = key
        self.clock = clock
        self.checkpoint_every = checkpoint_every
        # Last head seen per tenant: a guess that saves a read; a stale guess costs a retry.
        self._heads: dict[str, tuple[int, str]] = {}

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
        signed_at = timestamp(self.clock.now())
        key_id = self.key.key_id
        signature = self.key.sign(checkpoint_message(tenant, seq, head, signed_at, key_id))
        conn.execute(
            audit_checkpoints.insert(),
            {
                "tenant": tenant,
                "seq": seq,
                "head_hash": head,
                "signed_at": signed_at,
                "key_id": key_id,
                "signature": signature,
            },
        )

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
