"""Verifying the audit log: every hash, every link, every signed checkpoint.

Retention may empty a payload. Such an entry verifies as *purged*, not
tampered, only while its payload row says so and a ``retention.purged`` entry
later in the same chain covers its number; the envelope, with its payload
hash, is checked like any other.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from proctor.audit.chain import GENESIS, Envelope, checkpoint_message
from proctor.audit.events import EntryKind
from proctor.audit.keys import VerifyKey
from proctor.jsonvalue import sha256_hex
from proctor.states import TERMINAL_STATES
from proctor.store.tables import audit_checkpoints, audit_entries, audit_heads, audit_payloads

_TERMINAL = frozenset(state.value for state in TERMINAL_STATES)


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


@dataclass(frozen=True)
class Checkpoint:
    tenant: str
    seq: int
    head_hash: str
    signed_at: str
    key_id: str
    signature: str


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
class ChainResult:
    problems: list[Problem]
    purged: list[PurgedEntry]


@dataclass
class VerifyReport:
    checked: int = 0
    tenants: int = 0
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)
    purged: list[PurgedEntry] = field(default_factory=list)
    """Entries whose payload retention purged (not tampering)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(
    tenant: str,
    entries: Sequence[Envelope],
    payloads: Mapping[str, str],
    checkpoints: Sequence[Checkpoint],
    keys: Iterable[VerifyKey],
    head: tuple[int, str] | None,
    *,
    purges: Mapping[str, Purge] | None = None,
    after: tuple[int, str] | None = None,
) -> list[Problem]:
    """Problems in one tenant's chain, in order; empty when it verifies.

    ``purges`` holds the payload rows retention marked purged (their bodies are
    not in ``payloads``). ``after`` verifies a segment of a chain: the first entry
    follows entry ``after[0]``, whose hash is ``after[1]``.
    """
    return check_chain(
        tenant, entries, payloads, checkpoints, keys, head, purges=purges, after=after
    ).problems


def check_chain(
    tenant: str,
    entries: Sequence[Envelope],
    payloads: Mapping[str, str],
    checkpoints: Sequence[Checkpoint],
    keys: Iterable[VerifyKey],
    head: tuple[int, str] | None,
    *,
    purges: Mapping[str, Purge] | None = None,
    after: tuple[int, str] | None = None,
) -> ChainResult:
    """``verify_chain``, and which entries were purged (and accounted for)."""
    problems: list[Problem] = []
    purged: list[PurgedEntry] = []
    purges = purges or {}
    by_hash = {e.entry_hash: i for i, e in enumerate(entries)}
    origin_seq, origin = after or (0, GENESIS)
    prev_hash, expected_seq = origin, origin_seq + 1
    claims = _purge_claims(entries, payloads)
    # How many purged payloads each purge record's range holds: more than it says it
    # purged means some were emptied in its name.
    claimed: dict[str, int] = {}
    for entry in entries:
        purge = purges.get(entry.entry_id)
        claim = claims.get(purge.purge_entry or "") if purge is not None else None
        if purge is not None and claim is not None and claim.covers(entry.seq):
            claimed[purge.purge_entry or ""] = claimed.get(purge.purge_entry or "", 0) + 1
    for i, entry in enumerate(entries):
        problem = _link_problem(entries, i, by_hash, prev_hash, expected_seq, origin)
        if problem is None:
            problem = _content_problem(entry, payloads)
        if problem is not None and problem[1] == _MISSING and entry.entry_id in purges:
            purge = purges[entry.entry_id]
            problem = _purge_problem(entry, purge, claims, claimed)
            if problem is None:
                purged.append(
                    PurgedEntry(tenant, entry.seq, entry.entry_id, purge.purged_at, purge.rule)
                )
        if problem is not None:
            problems.append(Problem(tenant, entry.seq, entry.entry_id, *problem))
        prev_hash, expected_seq = entry.entry_hash, entry.seq + 1
    problems.extend(_tail_problems(tenant, entries, head))
    problems.extend(_unsigned_end_problems(tenant, entries, payloads, checkpoints))
    problems.extend(_checkpoint_problems(tenant, entries, checkpoints, {k.key_id: k for k in keys}))
    return ChainResult(problems, purged)


_MISSING = "its payload is missing"


@dataclass(frozen=True)
class _Claim:
    """A ``retention.purged`` entry for payloads: the numbers it covers and how many it purged."""

    seq: int
    first_seq: int
    last_seq: int
    count: int

    def covers(self, seq: int) -> bool:
        return self.first_seq <= seq <= self.last_seq < self.seq


def _purge_claims(entries: Sequence[Envelope], payloads: Mapping[str, str]) -> dict[str, _Claim]:
    """The intact payload purge records of a chain, by entry id."""
    claims = {}
    for entry in entries:
        body = payloads.get(entry.entry_id)
        if entry.kind != EntryKind.RETENTION_PURGED or body is None:
            continue
        if sha256_hex(body) != entry.payload_hash:
            continue
        record = json.loads(body)
        if record.get("what") != "payloads" or record.get("first_seq") is None:
            continue
        claims[entry.entry_id] = _Claim(
            entry.seq, int(record["first_seq"]), int(record["last_seq"]), int(record["count"])
        )
    return claims


def _purge_problem(
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
    return None


def _link_problem(
    entries: Sequence[Envelope],
    i: int,
    by_hash: Mapping[str, int],
    prev_hash: str,
    expected_seq: int,
    origin: str = GENESIS,
) -> tuple[Tamper, str] | None:
    entry = entries[i]
    if entry.prev_hash == prev_hash and entry.seq == expected_seq:
        return None
    target = by_hash.get(entry.prev_hash)
    if target is not None and target > i:
        return Tamper.REORDERED, (
            f"it follows entry {entries[target].seq}, which is stored after it"
        )
    if target is not None and target < i - 1:
        skipped = ", ".join(str(e.seq) for e in entries[target + 1 : i])
        return Tamper.INSERTED, f"entry {skipped} is not part of the chain (nothing links to it)"
    if entry.seq > expected_seq or (target is None and entry.prev_hash != origin):
        missing = (
            f"{expected_seq}"
            if entry.seq - expected_seq <= 1
            else (f"{expected_seq}-{entry.seq - 1}")
        )
        return Tamper.DELETED, f"the entry before it is missing (expected entry {missing})"
    if entry.seq < expected_seq:
        return Tamper.INSERTED, f"its number repeats or goes back (expected {expected_seq})"
    return Tamper.MODIFIED, "its link to the previous entry was changed"


def _content_problem(entry: Envelope, payloads: Mapping[str, str]) -> tuple[Tamper, str] | None:
    if entry.computed_hash() != entry.entry_hash:
        return Tamper.MODIFIED, "its envelope (kind, run, time or hashes) was changed"
    body = payloads.get(entry.entry_id)
    if body is None:
        return Tamper.DELETED, _MISSING
    if sha256_hex(body) != entry.payload_hash:
        return Tamper.MODIFIED, "its payload was changed"
    return None


def _tail_problems(
    tenant: str, entries: Sequence[Envelope], head: tuple[int, str] | None
) -> list[Problem]:
    if head is None:
        return []
    last_seq, last_hash = (entries[-1].seq, entries[-1].entry_hash) if entries else (0, GENESIS)
    head_seq, head_hash = head
    if head_seq > last_seq:
        return [
            Problem(
                tenant,
                last_seq + 1,
                None,
                Tamper.DELETED,
                f"the chain ends at {last_seq} but its head says {head_seq}",
            )
        ]
    if head_seq < last_seq:
        first_extra = next(e for e in entries if e.seq > head_seq)
        return [
            Problem(
                tenant,
                first_extra.seq,
                first_extra.entry_id,
                Tamper.INSERTED,
                f"entries after {head_seq} were added outside the log",
            )
        ]
    if head_hash != last_hash:
        return [
            Problem(
                tenant,
                last_seq,
                entries[-1].entry_id,
                Tamper.MODIFIED,
                "the last entry does not match the chain head",
            )
        ]
    return []


def _unsigned_end_problems(
    tenant: str,
    entries: Sequence[Envelope],
    payloads: Mapping[str, str],
    checkpoints: Sequence[Checkpoint],
) -> list[Problem]:
    """Every run end is signed: a last end no checkpoint covers means checkpoints were removed."""
    last_end = None
    for entry in entries:
        body = payloads.get(entry.entry_id)
        ended = entry.kind == EntryKind.RUN_STATE and body is not None
        if ended and json.loads(body or "{}").get("state") in _TERMINAL:
            last_end = entry
    signed = max((cp.seq for cp in checkpoints), default=0)
    if last_end is None or signed >= last_end.seq:
        return []
    return [
        Problem(
            tenant,
            last_end.seq,
            last_end.entry_id,
            Tamper.DELETED,
            f"run {last_end.run_id} ended here but no signed checkpoint covers it: "
            "the checkpoint signed when it ended was removed",
        )
    ]


def _checkpoint_problems(
    tenant: str,
    entries: Sequence[Envelope],
    checkpoints: Sequence[Checkpoint],
    keys: Mapping[str, VerifyKey],
) -> list[Problem]:
    by_seq = {e.seq: e for e in entries}
    problems = []
    for cp in checkpoints:
        key = keys.get(cp.key_id)
        message = checkpoint_message(tenant, cp.seq, cp.head_hash, cp.signed_at, cp.key_id)
        if key is None:
            problems.append(
                Problem(
                    tenant,
                    cp.seq,
                    None,
                    Tamper.BAD_SIGNATURE,
                    f"checkpoint signed by unknown key {cp.key_id}",
                )
            )
        elif not key.verify(cp.signature, message):
            problems.append(
                Problem(
                    tenant,
                    cp.seq,
                    None,
                    Tamper.BAD_SIGNATURE,
                    "the checkpoint signature does not verify",
                )
            )
        elif cp.seq not in by_seq:
            last = entries[-1].seq if entries else 0
            problems.append(
                Problem(
                    tenant,
                    cp.seq,
                    None,
                    Tamper.DELETED,
                    f"a signed checkpoint covers entry {cp.seq} but the chain ends at {last}",
                )
            )
        elif (entry := by_seq[cp.seq]).entry_hash != cp.head_hash:
            problems.append(
                Problem(
                    tenant,
                    cp.seq,
                    entry.entry_id,
                    Tamper.MODIFIED,
                    "the chain was rewritten: it differs from a signed checkpoint",
                )
            )
    return problems


def stored_entries(tenant: str) -> sa.Select[Any]:
    """A tenant's audit entries with their payload rows (and purge marks), in order."""
    return (
        sa.select(
            audit_entries,
            audit_payloads.c.body,
            audit_payloads.c.purged_at,
            audit_payloads.c.purge_rule,
            audit_payloads.c.purge_entry,
        )
        .outerjoin(audit_payloads, audit_payloads.c.entry_id == audit_entries.c.entry_id)
        .where(audit_entries.c.tenant == tenant)
        .order_by(audit_entries.c.seq)
    )


def purge_of(row: Any) -> Purge | None:
    """The purge mark of a :func:`stored_entries` row. A purged row's empty body is no
    payload; a marked row whose body is still there is checked like any payload, so
    altering it stays "modified"."""
    if row.purged_at is None or row.body != "":
        return None
    return Purge(row.purged_at.isoformat(), row.purge_rule or "", row.purge_entry)


def verify_store(
    conn: sa.Connection, keys: Sequence[VerifyKey], tenant: str | None = None
) -> VerifyReport:
    """Verify every tenant's chain (or one) as stored in the database."""
    report = VerifyReport()
    heads = {
        r.tenant: (int(r.seq), r.head_hash)
        for r in conn.execute(sa.select(audit_heads))
        if tenant is None or r.tenant == tenant
    }
    tenants_q = sa.select(audit_entries.c.tenant).distinct()
    tenants = set(heads) | {t for (t,) in conn.execute(tenants_q)}
    for name in sorted(t for t in tenants if tenant is None or t == tenant):
        rows = conn.execute(stored_entries(name)).all()
        entries = [Envelope.of_row(r) for r in rows]
        purges = {r.entry_id: p for r in rows if (p := purge_of(r)) is not None}
        payloads = {
            r.entry_id: r.body for r in rows if r.body is not None and r.entry_id not in purges
        }
        checkpoints = [
            Checkpoint(c.tenant, int(c.seq), c.head_hash, c.signed_at, c.key_id, c.signature)
            for c in conn.execute(
                sa.select(audit_checkpoints)
                .where(audit_checkpoints.c.tenant == name)
                .order_by(audit_checkpoints.c.seq)
            )
        ]
        report.tenants += 1
        report.checked += len(entries)
        report.checkpoints += len(checkpoints)
        result = check_chain(
            name, entries, payloads, checkpoints, keys, heads.get(name), purges=purges
        )
        report.problems.extend(result.problems)
        report.purged.extend(result.purged)
    return report
