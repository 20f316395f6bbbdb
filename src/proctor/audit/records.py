"""What the audit log stores and signs, as values: envelopes, their hashes, checkpoints.

An entry's envelope commits to its payload's hash and to the previous entry's hash.
A checkpoint signs a chain head; since schema 0009 it also signs its own number in
the tenant's sequence of checkpoints and the hash of the checkpoint before it, so the
checkpoints form a chain of their own. Older checkpoints (no number) sign the head
only and still verify, each on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from proctor.jsonvalue import canonical_json, sha256_hex

GENESIS = "0" * 64


def timestamp(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


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


def checkpoint_message(
    tenant: str,
    seq: int,
    head_hash: str,
    signed_at: str,
    key_id: str,
    *,
    number: int | None = None,
    prev_hash: str | None = None,
) -> bytes:
    """The bytes a checkpoint signs. Without ``number`` it is the older, unlinked form."""
    body: dict[str, Any] = {
        "tenant": tenant,
        "seq": seq,
        "head_hash": head_hash,
        "signed_at": signed_at,
        "key_id": key_id,
    }
    if number is not None:
        body |= {"number": number, "prev_checkpoint": prev_hash}
    return canonical_json(body).encode()


@dataclass(frozen=True)
class Checkpoint:
    """A signed chain head: entry ``seq`` of ``tenant`` has hash ``head_hash``.

    ``number`` counts the tenant's checkpoints from 1 and ``prev_hash`` is the hash of
    the checkpoint before (``GENESIS`` for the first); both are ``None`` on checkpoints
    signed before checkpoints were linked.
    """

    tenant: str
    seq: int
    head_hash: str
    signed_at: str
    key_id: str
    signature: str
    number: int | None = None
    prev_hash: str | None = None

    @property
    def linked(self) -> bool:
        return self.number is not None

    def message(self) -> bytes:
        return checkpoint_message(
            self.tenant,
            self.seq,
            self.head_hash,
            self.signed_at,
            self.key_id,
            number=self.number,
            prev_hash=self.prev_hash,
        )

    @property
    def hash(self) -> str:
        """What the next checkpoint links to: the hash of the message this one signs."""
        return sha256_hex(self.message().decode())

    @classmethod
    def of_row(cls, row: Any) -> Checkpoint:
        """A checkpoint of an ``audit_checkpoints`` row (the link columns may be absent)."""
        fields = row._mapping
        number = fields.get("number")
        return cls(
            str(row.tenant),
            int(row.seq),
            str(row.head_hash),
            str(row.signed_at),
            str(row.key_id),
            str(row.signature),
            None if number is None else int(number),
            fields.get("prev_hash"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "seq": self.seq,
            "head_hash": self.head_hash,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "signature": self.signature,
            "number": self.number,
            "prev_hash": self.prev_hash,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], tenant: str | None = None) -> Checkpoint:
        """From :meth:`to_json` (``tenant`` when the dict leaves it out); ``KeyError``,
        ``TypeError`` or ``ValueError`` when it is not one."""
        number = data.get("number")
        prev = data.get("prev_hash")
        return cls(
            str(data["tenant"] if tenant is None else tenant),
            int(data["seq"]),
            str(data["head_hash"]),
            str(data["signed_at"]),
            str(data["key_id"]),
            str(data["signature"]),
            None if number is None else int(number),
            None if prev is None else str(prev),
        )
