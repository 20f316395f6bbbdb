"""Purging what retention says has expired, in batches, each recorded in the audit chain.

An audit payload's body is emptied; its envelope, with the payload hash, stays,
and the payload row says when it was purged, under which rule, and which
``retention.purged`` entry records it. Whether a payload expired is decided from
its entry's time as the chain hashed it, never from the payload row's own time,
which anyone with write access could backdate; verification checks the same.
A finished run keeps its row, its steps
(tool, status, decision, argument hash, idempotency key), its approvals and its
costs; its steps' arguments and results and its sealed conversation go. Runs
still in flight, and the payloads of their entries, are never purged.

Each batch is one transaction: the purged rows and the chain entry recording
them commit together, so a purge interrupted half-way leaves a store that
verifies, and running it again finishes the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from proctor.audit.chain import AuditLog, timestamp
from proctor.audit.events import EntryKind, RetentionPurged
from proctor.retention.settings import Expiry, Kind, RetentionSettings
from proctor.states import TERMINAL_STATES
from proctor.store import Store
from proctor.store.tables import audit_entries, audit_heads, audit_payloads, runs, steps

_TERMINAL = sorted(state.value for state in TERMINAL_STATES)
BATCH_SIZE = 500


@dataclass
class Purged:
    """What was (or, in a dry run, would be) purged of one kind for one tenant."""

    tenant: str
    kind: Kind
    rule: str
    cutoff: datetime
    """Everything older than this expired."""
    count: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    batches: int = 0

    def add(self, count: int, oldest: datetime | None, newest: datetime | None) -> None:
        self.count += count
        if oldest is not None and (self.oldest is None or oldest < self.oldest):
            self.oldest = oldest
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest


@dataclass(frozen=True)
class PurgeReport:
    dry_run: bool
    purged: list[Purged]

    @property
    def total(self) -> int:
        return sum(p.count for p in self.purged)


def purge(
    store: Store,
    audit: AuditLog,
    retention: RetentionSettings,
    *,
    now: datetime,
    bundle_version: str,
    tenant: str | None = None,
    dry_run: bool = False,
    batch_size: int = BATCH_SIZE,
) -> PurgeReport:
    """Purge what expired by ``now`` for every tenant (or one), batch by batch.

    ``bundle_version`` is the bundle whose settings decided; the purge entries carry it.
    """
    with store.read() as conn:
        tenants = _tenants(conn) if tenant is None else [tenant]
    results = []
    for name in tenants:
        for expiry in retention.expiries(name):
            done = Purged(name, expiry.kind, expiry.rule, now - expiry.ttl)
            if dry_run:
                with store.read() as conn:
                    done.add(*_expired_summary(conn, name, expiry.kind, done.cutoff))
            else:
                while True:
                    with store.write() as conn:
                        count = _purge_batch(
                            conn, audit, done, expiry, now, bundle_version, batch_size
                        )
                    if count == 0:
                        break
                    done.batches += 1
            results.append(done)
    return PurgeReport(dry_run, results)


def _tenants(conn: sa.Connection) -> list[str]:
    found = {t for (t,) in conn.execute(sa.select(audit_heads.c.tenant))}
    found |= {t for (t,) in conn.execute(sa.select(runs.c.tenant).distinct())}
    return sorted(found)


def _in_flight() -> sa.ColumnElement[bool]:
    """The entry belongs to a run that has not ended."""
    return sa.exists().where(runs.c.id == audit_entries.c.run_id, runs.c.state.not_in(_TERMINAL))


def _payloads_expired(tenant: str, cutoff: datetime) -> list[sa.ColumnElement[bool]]:
    return [
        audit_entries.c.tenant == tenant,
        # The envelope's time, as hashed: the same text form, so it compares as text.
        audit_entries.c.created_at < timestamp(cutoff.astimezone(UTC)),
        audit_payloads.c.purged_at.is_(None),
        # Purge records stay: they are what lets the chain account for every purge.
        audit_entries.c.kind != EntryKind.RETENTION_PURGED.value,
        ~_in_flight(),
    ]


def _runs_expired(tenant: str, cutoff: datetime) -> list[sa.ColumnElement[bool]]:
    return [
        runs.c.tenant == tenant,
        runs.c.state.in_(_TERMINAL),
        runs.c.ended_at < cutoff,
        runs.c.purged_at.is_(None),
    ]


def _expired_summary(
    conn: sa.Connection, tenant: str, kind: Kind, cutoff: datetime
) -> tuple[int, datetime | None, datetime | None]:
    if kind is Kind.PAYLOADS:
        created = audit_entries.c.created_at
        query = (
            sa.select(sa.func.count(), sa.func.min(created), sa.func.max(created))
            .select_from(audit_payloads.join(audit_entries, _same_entry()))
            .where(*_payloads_expired(tenant, cutoff))
        )
    else:
        ended = runs.c.ended_at
        query = sa.select(sa.func.count(), sa.func.min(ended), sa.func.max(ended)).where(
            *_runs_expired(tenant, cutoff)
        )
    count, oldest, newest = conn.execute(query).one()
    return int(count), _aware(oldest), _aware(newest)


def _same_entry() -> sa.ColumnElement[bool]:
    return audit_entries.c.entry_id == audit_payloads.c.entry_id


def _purge_batch(
    conn: sa.Connection,
    audit: AuditLog,
    done: Purged,
    expiry: Expiry,
    now: datetime,
    bundle_version: str,
    batch_size: int,
) -> int:
    if expiry.kind is Kind.PAYLOADS:
        return _purge_payloads(conn, audit, done, now, bundle_version, batch_size)
    return _purge_runs(conn, audit, done, now, bundle_version, batch_size)


def _purge_payloads(
    conn: sa.Connection,
    audit: AuditLog,
    done: Purged,
    now: datetime,
    bundle_version: str,
    batch_size: int,
) -> int:
    rows = conn.execute(
        sa.select(audit_payloads.c.entry_id, audit_entries.c.seq, audit_entries.c.created_at)
        .select_from(audit_payloads.join(audit_entries, _same_entry()))
        .where(*_payloads_expired(done.tenant, done.cutoff))
        .order_by(audit_entries.c.seq)
        .limit(batch_size)
    ).all()
    if not rows:
        return 0
    times = [_aware(r.created_at) for r in rows]
    oldest, newest = min(t for t in times if t), max(t for t in times if t)
    record = audit.append(
        conn,
        done.tenant,
        RetentionPurged(
            what=Kind.PAYLOADS.value,
            rule=done.rule,
            cutoff=timestamp(done.cutoff),
            count=len(rows),
            oldest=timestamp(oldest),
            newest=timestamp(newest),
            first_seq=int(rows[0].seq),
            last_seq=int(rows[-1].seq),
            run_ids=[],
        ),
        run_id=None,
        step=None,
        bundle_version=bundle_version,
    )
    conn.execute(
        audit_payloads.update()
        .where(audit_payloads.c.entry_id.in_([r.entry_id for r in rows]))
        .values(body="", purged_at=now, purge_rule=done.rule, purge_entry=record.entry_id)
    )
    done.add(len(rows), oldest, newest)
    return len(rows)


def _purge_runs(
    conn: sa.Connection,
    audit: AuditLog,
    done: Purged,
    now: datetime,
    bundle_version: str,
    batch_size: int,
) -> int:
    rows = conn.execute(
        sa.select(runs.c.id, runs.c.ended_at)
        .where(*_runs_expired(done.tenant, done.cutoff))
        .order_by(runs.c.ended_at, runs.c.id)
        .limit(batch_size)
    ).all()
    if not rows:
        return 0
    ids = [r.id for r in rows]
    times = [_aware(r.ended_at) for r in rows]
    oldest, newest = min(t for t in times if t), max(t for t in times if t)
    audit.append(
        conn,
        done.tenant,
        RetentionPurged(
            what=Kind.RUNS.value,
            rule=done.rule,
            cutoff=timestamp(done.cutoff),
            count=len(rows),
            oldest=timestamp(oldest),
            newest=timestamp(newest),
            first_seq=None,
            last_seq=None,
            run_ids=ids,
        ),
        run_id=None,
        step=None,
        bundle_version=bundle_version,
    )
    # What the chain needs stays: each step's tool, status, decision, argument hash
    # and idempotency key. What the call carried goes, sealed copies included.
    conn.execute(
        steps.update()
        .where(steps.c.run_id.in_(ids))
        .values(args={}, result=sa.null(), sealed_args=None, sealed_result=None)
    )
    conn.execute(
        runs.update()
        .where(runs.c.id.in_(ids), runs.c.state.in_(_TERMINAL))
        .values(conversation=sa.null(), purged_at=now)
    )
    done.add(len(rows), oldest, newest)
    return len(rows)


def _aware(value: datetime | None) -> datetime | None:
    """Aggregates bypass the column type: SQLite hands back naive UTC (or text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
