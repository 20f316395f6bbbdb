"""Verifying the audit log: every hash, every link, every signed checkpoint.

Checkpoints are checked as a chain of their own: each names its number and the
hash of the checkpoint before it, so one removed, reordered or inserted is named.
Checkpoints signed before that link existed are checked one by one. Checkpoints
count only when signed by one of the keys given: an auditor passes the
deployment's public key and nothing else. An anchor (signed heads kept outside
the database) proves the database still extends every head it holds.

Retention may empty a payload. Such an entry verifies as *purged*, not
tampered, only while its payload row says so, a ``retention.purged`` entry
later in the same chain covers its number, and the purge was due: the entry's
own (hashed) time is before the cutoff the purge record names, and that cutoff
is what the rule it names gives at the purge record's time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from proctor.audit.anchor import AnchorRead
from proctor.audit.events import EntryKind
from proctor.audit.keys import VerifyKey
from proctor.audit.records import GENESIS, Checkpoint, Envelope
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


Body = str | bytes
"""A stored payload: text, or bytes where someone put a BLOB in its place."""


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
    anchored: int = 0
    """Heads of the anchor checked against the database (0 without an anchor)."""
    problems: list[Problem] = field(default_factory=list)
    purged: list[PurgedEntry] = field(default_factory=list)
    """Entries whose payload retention purged (not tampering)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(
    tenant: str,
    entries: Sequence[Envelope],
    payloads: Mapping[str, Body],
    checkpoints: Sequence[Checkpoint],
    keys: Iterable[VerifyKey],
    head: tuple[int, str] | None,
    *,
    purges: Mapping[str, Purge] | None = None,
    after: tuple[int, str] | None = None,
    anchored: Sequence[Checkpoint] = (),
) -> list[Problem]:
    """Problems in one tenant's chain, in order; empty when it verifies.

    ``purges`` holds the payload rows retention marked purged (their bodies are
    not in ``payloads``). ``after`` verifies a segment of a chain: the first entry
    follows entry ``after[0]``, whose hash is ``after[1]``; the first checkpoint's
    link then points outside the segment and is not checked. ``anchored`` are the
    tenant's heads kept outside the database.
    """
    return check_chain(
        tenant,
        entries,
        payloads,
        checkpoints,
        keys,
        head,
        purges=purges,
        after=after,
        anchored=anchored,
    ).problems


def check_chain(
    tenant: str,
    entries: Sequence[Envelope],
    payloads: Mapping[str, Body],
    checkpoints: Sequence[Checkpoint],
    keys: Iterable[VerifyKey],
    head: tuple[int, str] | None,
    *,
    purges: Mapping[str, Purge] | None = None,
    after: tuple[int, str] | None = None,
    anchored: Sequence[Checkpoint] = (),
    signed_ends: bool = True,
) -> ChainResult:
    """``verify_chain``, and which entries were purged (and accounted for).

    ``signed_ends=False`` skips the rule that the last run end is signed (the signer
    checks a chain whose last end it is about to sign)."""
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
                rule = claims[purge.purge_entry or ""].rule
                purged.append(PurgedEntry(tenant, entry.seq, entry.entry_id, purge.purged_at, rule))
        if problem is not None:
            problems.append(Problem(tenant, entry.seq, entry.entry_id, *problem))
        prev_hash, expected_seq = entry.entry_hash, entry.seq + 1
    problems.extend(_tail_problems(tenant, entries, head))
    key_map = {k.key_id: k for k in keys}
    signature_problems, valid = _signature_problems(tenant, entries, checkpoints, key_map)
    if signed_ends:
        # Any checkpoint row counts here: one that does not verify is named on its own.
        problems.extend(_unsigned_end_problems(tenant, entries, payloads, checkpoints))
    problems.extend(signature_problems)
    problems.extend(_link_problems(tenant, valid, segment=after is not None))
    problems.extend(_anchor_problems(tenant, entries, valid, anchored, key_map))
    return ChainResult(problems, purged)


_MISSING = "its payload is missing"


def trusted_body(entry: Envelope, payloads: Mapping[str, Body]) -> str | None:
    """The entry's payload when it is text that hashes to what the envelope says."""
    body = payloads.get(entry.entry_id)
    if isinstance(body, str) and sha256_hex(body) == entry.payload_hash:
        return body
    return None


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


def _purge_claims(entries: Sequence[Envelope], payloads: Mapping[str, Body]) -> dict[str, _Claim]:
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


def _content_problem(entry: Envelope, payloads: Mapping[str, Body]) -> tuple[Tamper, str] | None:
    if entry.computed_hash() != entry.entry_hash:
        return Tamper.MODIFIED, "its envelope (kind, run, time or hashes) was changed"
    body = payloads.get(entry.entry_id)
    if body is None:
        return Tamper.DELETED, _MISSING
    if not isinstance(body, str):
        return Tamper.MODIFIED, "its payload is stored as bytes, not text"
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


def last_run_end(entries: Sequence[Envelope], payloads: Mapping[str, Body]) -> Envelope | None:
    """The last entry that ended a run (a ``run.state`` entry to a terminal state)."""
    last_end = None
    for entry in entries:
        if entry.kind != EntryKind.RUN_STATE:
            continue
        body = trusted_body(entry, payloads)
        if body is not None and json.loads(body).get("state") in _TERMINAL:
            last_end = entry
    return last_end


def _unsigned_end_problems(
    tenant: str,
    entries: Sequence[Envelope],
    payloads: Mapping[str, Body],
    checkpoints: Sequence[Checkpoint],
) -> list[Problem]:
    """Every run end is signed: a last end no checkpoint covers means checkpoints were removed
    (or the signer refused to sign a chain that did not verify)."""
    last_end = last_run_end(entries, payloads)
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


def signed_form(cp: Checkpoint, key: VerifyKey) -> Checkpoint | None:
    """``cp`` as ``key`` signed it, or ``None``. A signature over the older, unlinked
    message makes an unlinked checkpoint, whatever its link columns say."""
    if key.verify(cp.signature, cp.message()):
        return cp
    if cp.linked:
        unlinked = replace(cp, number=None, prev_hash=None)
        if key.verify(cp.signature, unlinked.message()):
            return unlinked
    return None


def _signature_problems(
    tenant: str,
    entries: Sequence[Envelope],
    checkpoints: Sequence[Checkpoint],
    keys: Mapping[str, VerifyKey],
) -> tuple[list[Problem], list[Checkpoint]]:
    """Checkpoints whose signature fails or whose head is not the chain's; and the
    checkpoints whose signature verifies, in order."""
    by_seq = {e.seq: e for e in entries}
    problems, valid = [], []
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        key = keys.get(cp.key_id)
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
            continue
        signed = signed_form(cp, key)
        if signed is None:
            problems.append(
                Problem(
                    tenant,
                    cp.seq,
                    None,
                    Tamper.BAD_SIGNATURE,
                    "the checkpoint signature does not verify",
                )
            )
            continue
        valid.append(signed)
        if cp.seq not in by_seq:
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
    return problems, valid


def link_problem(prev: Checkpoint | None, cp: Checkpoint) -> tuple[Tamper, str] | None:
    """Why ``cp`` does not follow ``prev`` (``None``: it is the first) in the chain of
    checkpoints; ``None`` when it does."""
    if not cp.linked:
        if prev is not None and prev.linked:
            return Tamper.INSERTED, (
                f"an unlinked checkpoint follows checkpoint {prev.number} (entry {prev.seq}); "
                "only checkpoints signed before linking existed may lack a link"
            )
        return None
    number = cp.number or 0
    expected = (prev.number or 0) + 1 if prev is not None and prev.linked else 1
    after = (
        "the start of the chain"
        if prev is None
        else f"checkpoint {prev.number} (entry {prev.seq})"
        if prev.linked
        else f"the unlinked checkpoint at entry {prev.seq}"
    )
    if number > expected:
        missing = f"{expected}" if number - expected == 1 else f"{expected}-{number - 1}"
        verb = "is" if number - expected == 1 else "are"
        noun = "checkpoint" if number - expected == 1 else "checkpoints"
        return (
            Tamper.DELETED,
            f"{noun} {missing} {verb} missing: checkpoint {number} follows {after}",
        )
    if number < expected:
        if number == expected - 1:
            return Tamper.INSERTED, f"checkpoint {number} repeats: it follows {after}"
        return Tamper.REORDERED, f"checkpoint {number} comes after {after}"
    if cp.prev_hash != (prev.hash if prev is not None else GENESIS):
        if number == 1 and cp.prev_hash != GENESIS:
            return Tamper.DELETED, (
                "checkpoint 1 was signed after an older, unlinked checkpoint that is missing"
            )
        return Tamper.INSERTED, (
            f"checkpoint {number} does not link to {after}: it was not signed after it"
        )
    return None


def _link_problems(tenant: str, valid: Sequence[Checkpoint], *, segment: bool) -> list[Problem]:
    """The chain of checkpoints, among those whose signature verifies."""
    problems = []
    prev: Checkpoint | None = None
    for i, cp in enumerate(valid):
        problem = None if segment and i == 0 else link_problem(prev, cp)
        if problem is not None:
            problems.append(Problem(tenant, cp.seq, None, *problem))
        prev = cp
    return problems


def _anchor_problems(
    tenant: str,
    entries: Sequence[Envelope],
    valid: Sequence[Checkpoint],
    anchored: Sequence[Checkpoint],
    keys: Mapping[str, VerifyKey],
) -> list[Problem]:
    """Does the database still extend every head the anchor holds?"""
    by_seq = {e.seq: e for e in entries}
    last = entries[-1].seq if entries else 0
    kept = {cp.signature for cp in valid}
    problems = []
    beyond = [a for a in anchored if a.seq > last]
    for a in sorted(anchored, key=lambda c: c.seq):
        key = keys.get(a.key_id)
        if key is None or signed_form(a, key) is None:
            why = f"unknown key {a.key_id}" if key is None else "a signature that does not verify"
            problems.append(
                Problem(tenant, a.seq, None, Tamper.BAD_SIGNATURE, f"the anchored head has {why}")
            )
        elif a.seq > last:
            if a is max(beyond, key=lambda c: c.seq):
                problems.append(
                    Problem(
                        tenant,
                        a.seq,
                        None,
                        Tamper.DELETED,
                        f"the chain ends at {last} but the anchor holds its signed head at "
                        f"{a.seq}: its tail was deleted",
                    )
                )
        elif (entry := by_seq.get(a.seq)) is None or entry.entry_hash != a.head_hash:
            problems.append(
                Problem(
                    tenant,
                    a.seq,
                    None if entry is None else entry.entry_id,
                    Tamper.MODIFIED,
                    "the chain was rewritten: it differs from a head anchored outside the database",
                )
            )
        elif a.signature not in kept:
            problems.append(
                Problem(
                    tenant,
                    a.seq,
                    None,
                    Tamper.DELETED,
                    f"the checkpoint at entry {a.seq}, held by the anchor, was removed "
                    "from the database",
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


def stored_checkpoints(conn: sa.Connection) -> sa.Select[Any]:
    """``audit_checkpoints`` with the columns this store has: a store not migrated to the
    linked checkpoints (an auditor's copy, read as it is) lacks ``number``."""
    have = {c["name"] for c in sa.inspect(conn).get_columns("audit_checkpoints")}
    return sa.select(*[c for c in audit_checkpoints.c if c.name in have])


def verify_store(
    conn: sa.Connection,
    keys: Sequence[VerifyKey],
    tenant: str | None = None,
    *,
    anchor: AnchorRead | None = None,
) -> VerifyReport:
    """Verify every tenant's chain (or one) as stored in the database.

    Only checkpoints signed by one of ``keys`` count. With ``anchor``, the database
    must also still extend every head it holds. Reads only: nothing is written."""
    report = VerifyReport()
    heads = {
        r.tenant: (int(r.seq), r.head_hash)
        for r in conn.execute(
            sa.select(audit_heads.c.tenant, audit_heads.c.seq, audit_heads.c.head_hash)
        )
    }
    anchored: dict[str, list[Checkpoint]] = {}
    for a in anchor.heads if anchor is not None else []:
        anchored.setdefault(a.tenant, []).append(a)
    if anchor is not None:
        report.problems.extend(
            Problem(
                "(anchor)",
                line,
                None,
                Tamper.MODIFIED,
                f"line {line} of {anchor.source} is not a signed head",
            )
            for line in anchor.malformed
        )
    every = sa.select(audit_checkpoints.c.tenant).distinct()
    tenants = set(heads) | set(anchored)
    tenants |= {t for (t,) in conn.execute(sa.select(audit_entries.c.tenant).distinct())}
    tenants |= {t for (t,) in conn.execute(every)}
    for name in sorted(t for t in tenants if tenant is None or t == tenant):
        rows = conn.execute(stored_entries(name)).all()
        entries = [Envelope.of_row(r) for r in rows]
        purges = {r.entry_id: p for r in rows if (p := purge_of(r)) is not None}
        payloads = {
            r.entry_id: r.body for r in rows if r.body is not None and r.entry_id not in purges
        }
        query = stored_checkpoints(conn)
        checkpoints = [
            Checkpoint.of_row(c)
            for c in conn.execute(
                query.where(audit_checkpoints.c.tenant == name).order_by(audit_checkpoints.c.seq)
            )
        ]
        report.tenants += 1
        report.checked += len(entries)
        report.checkpoints += len(checkpoints)
        report.anchored += len(anchored.get(name, []))
        result = check_chain(
            name,
            entries,
            payloads,
            checkpoints,
            keys,
            heads.get(name),
            purges=purges,
            anchored=anchored.get(name, []),
        )
        report.problems.extend(result.problems)
        report.purged.extend(result.purged)
    return report


def refused_signatures(conn: sa.Connection) -> dict[str, int]:
    """How many times the signer refused to sign each tenant's chain (for ``/metrics``)."""
    return {
        str(t): int(n)
        for t, n in conn.execute(sa.select(audit_heads.c.tenant, audit_heads.c.refused_signatures))
    }
