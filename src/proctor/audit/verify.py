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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from proctor.audit.anchor import AnchorRead
from proctor.audit.events import EntryKind
from proctor.audit.keys import VerifyKey
from proctor.audit.problems import Body, Problem, Tamper, trusted_body
from proctor.audit.purges import Purge, PurgedEntry, purge_claims, purge_problem
from proctor.audit.records import GENESIS, Checkpoint, Envelope
from proctor.audit.signatures import (
    anchor_problems,
    link_problem,
    link_problems,
    signature_problems,
    signed_form,
)
from proctor.jsonvalue import sha256_hex
from proctor.states import TERMINAL_STATES
from proctor.store.tables import (
    audit_checkpoints,
    audit_entries,
    audit_heads,
    audit_payloads,
    audit_refusals,
)

__all__ = [
    "Body",
    "ChainResult",
    "Checkpoint",
    "Problem",
    "Purge",
    "PurgedEntry",
    "Tamper",
    "VerifyReport",
    "check_chain",
    "last_run_end",
    "link_problem",
    "purge_of",
    "refused_signatures",
    "signed_form",
    "stored_checkpoints",
    "stored_entries",
    "trusted_body",
    "verify_chain",
    "verify_store",
]

_TERMINAL = frozenset(state.value for state in TERMINAL_STATES)


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
    claims = purge_claims(entries, payloads)
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
            problem = purge_problem(entry, purge, claims, claimed)
            if problem is None:
                rule = claims[purge.purge_entry or ""].rule
                purged.append(PurgedEntry(tenant, entry.seq, entry.entry_id, purge.purged_at, rule))
        if problem is not None:
            problems.append(Problem(tenant, entry.seq, entry.entry_id, *problem))
        prev_hash, expected_seq = entry.entry_hash, entry.seq + 1
    problems.extend(_tail_problems(tenant, entries, head))
    key_map = {k.key_id: k for k in keys}
    bad_signatures, valid = signature_problems(tenant, entries, checkpoints, key_map)
    if signed_ends:
        # Any checkpoint row counts here: one that does not verify is named on its own.
        problems.extend(_unsigned_end_problems(tenant, entries, payloads, checkpoints))
    problems.extend(bad_signatures)
    problems.extend(link_problems(tenant, valid, segment=after is not None))
    problems.extend(anchor_problems(tenant, entries, valid, anchored, key_map))
    return ChainResult(problems, purged)


_MISSING = "its payload is missing"


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
    """How many times the signer refused to sign each tenant's chain (for ``/metrics``);
    0 for a tenant with a chain and no refusal."""
    count = sa.func.coalesce(audit_refusals.c.refused, 0)
    query = sa.select(audit_heads.c.tenant, count).outerjoin(
        audit_refusals, audit_refusals.c.tenant == audit_heads.c.tenant
    )
    return {str(t): int(n) for t, n in conn.execute(query)}
