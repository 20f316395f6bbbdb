"""What verification reports: a problem names the tenant, the entry, a kind and a detail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from proctor.audit.records import Envelope
from proctor.jsonvalue import sha256_hex

Body = str | bytes
"""A stored payload: text, or bytes where someone put a BLOB in its place."""


class Tamper(StrEnum):
    MODIFIED = "modified"
    DELETED = "deleted"
    REORDERED = "reordered"
    INSERTED = "inserted"
    BAD_SIGNATURE = "bad signature"


@dataclass(frozen=True)
class Problem:
    tenant: str
    seq: int
    entry_id: str | None
    tamper: Tamper
    detail: str

    def __str__(self) -> str:
        who = f" ({self.entry_id})" if self.entry_id else ""
        return f"tenant {self.tenant}, entry {self.seq}{who}: {self.tamper}: {self.detail}"


def trusted_body(entry: Envelope, payloads: Mapping[str, Body]) -> str | None:
    """The entry's payload when it is text that hashes to what the envelope says."""
    body = payloads.get(entry.entry_id)
    if isinstance(body, str) and sha256_hex(body) == entry.payload_hash:
        return body
    return None
