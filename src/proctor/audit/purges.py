"""Payloads purged by retention, accounted for by the chain: covered by a ``retention.purged``
entry, no more than it says it purged, and due under the rule it names."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from proctor.audit.events import EntryKind
from proctor.audit.problems import Body, Tamper, trusted_body
from proctor.audit.records import Envelope


@dataclass(frozen=True)
class Purge:
    """What a purged payload row says: when, under which rule, and the entry recording it."""

    purged_at: str
    rule: str
    purge_entry: str | None


@dataclass(frozen=True)
class PurgedEntry:
    """An entry whose payload retention purged, accounted for by the chain."""

    tenant: str
    seq: int
    entry_id: str
    purged_at: str
    rule: str

    def __str__(self) -> str:
        return (
            f"tenant {self.tenant}, entry {self.seq} ({self.entry_id}): "
            f"payload purged {self.purged_at} under {self.rule}"
        )


@dataclass(frozen=True)
class _Claim:
    """A ``retention.purged`` entry for payloads: the numbers it covers, how many it
    purged, under which rule, with which cutoff, and when."""

    seq: int
    first_seq: int
    last_seq: int
    count: int
    rule: str
    cutoff: str
    at: str

    def covers(self, seq: int) -> bool:
        return self.first_seq <= seq <= self.last_seq < self.seq


def purge_claims(entries: Sequence[Envelope], payloads: Mapping[str, Body]) -> dict[str, _Claim]:
    """The intact payload purge records of a chain, by entry id."""
    claims = {}
    for entry in entries:
        body = trusted_body(entry, payloads)
        if entry.kind != EntryKind.RETENTION_PURGED or body is None:
            continue
        record = json.loads(body)
        if record.get("what") != "payloads" or record.get("first_seq") is None:
            continue
        claims[entry.entry_id] = _Claim(
            entry.seq,
            int(record["first_seq"]),
            int(record["last_seq"]),
            int(record["count"]),
            str(record.get("rule", "")),
            str(record.get("cutoff", "")),
            entry.created_at,
        )
    return claims


def purge_problem(
    entry: Envelope, purge: Purge, claims: Mapping[str, _Claim], claimed: Mapping[str, int]
) -> tuple[Tamper, str] | None:
    """``None`` when the chain accounts for this purged payload; else why it does not."""
    claim = claims.get(purge.purge_entry or "")
    if claim is None:
        return Tamper.DELETED, (
            "its payload was emptied as purged, but no retention.purged entry "
            "of the chain records that purge"
        )
    if not claim.covers(entry.seq):
        return Tamper.DELETED, (
            f"its payload was emptied as purged by entry {claim.seq}, "
            f"which purged entries {claim.first_seq}-{claim.last_seq} only"
        )
    if claimed.get(purge.purge_entry or "", 0) > claim.count:
        return Tamper.DELETED, (
            f"its payload was emptied as purged by entry {claim.seq}, which purged "
            f"{claim.count} payloads, but {claimed[purge.purge_entry or '']} claim it"
        )
    return _not_due(entry, claim)


_TTL = re.compile(r"=(\d+)([wdhms])$")
_UNIT_S = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def _not_due(entry: Envelope, claim: _Claim) -> tuple[Tamper, str] | None:
    """Why the purge of ``entry`` by ``claim`` was not due under the rule it names."""
    ttl = _TTL.search(claim.rule)
    try:
        cutoff, at = _moment(claim.cutoff), _moment(claim.at)
        written = _moment(entry.created_at)
    except ValueError:
        return Tamper.DELETED, f"its purge record, entry {claim.seq}, names no valid cutoff"
    if ttl is None:
        return Tamper.DELETED, (
            f"its purge record, entry {claim.seq}, names no retention rule ({claim.rule!r})"
        )
    keep = timedelta(seconds=int(ttl.group(1)) * _UNIT_S[ttl.group(2)])
    if cutoff + keep > at:
        return Tamper.DELETED, (
            f"its purge record, entry {claim.seq}, cut off at {claim.cutoff}, later than "
            f"{claim.rule} allows at {claim.at}"
        )
    if written >= cutoff:
        return Tamper.DELETED, (
            f"its payload was purged under {claim.rule} (cutoff {claim.cutoff}) but the "
            f"entry was written at {entry.created_at}: it was not due"
        )
    return None


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)
