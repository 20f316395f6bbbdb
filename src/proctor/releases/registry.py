"""Releases as the store keeps them, and which release serves each channel.

A deployment has four channels: ``stable`` (serves every run not on the canary),
``canary`` (a sticky share of new runs), ``shadow`` (a sampled share of live runs,
mirrored with side effects suppressed) and ``dry_run`` (a bundle deciding beside
the live one, log only). Every change of a channel is one transaction that writes
the channel row and its audit entry, under the deployment's own audit chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from proctor.audit import AuditLog
from proctor.audit.events import AuditEvent, ReleaseCreated, ReleaseMoved, ReleaseSloBreached
from proctor.clock import Clock
from proctor.errors import ConfigError
from proctor.releases.manifest import Manifest
from proctor.releases.slo import SloVerdict
from proctor.store import Store
from proctor.store.tables import audit_entries, audit_payloads, release_channels, releases

RELEASES_TENANT = "_releases"
"""The audit chain of release transitions: they belong to the deployment, not a tenant."""

CHANNELS = ("stable", "canary", "shadow", "dry_run")


@dataclass(frozen=True)
class Release:
    id: str
    digest: str
    manifest: Manifest
    note: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True)
class Channel:
    release: str
    share: float
    """The canary's share of new runs, the shadow's fraction of live runs (0 to 1)."""
    since: datetime
    set_by: str


@dataclass(frozen=True)
class Channels:
    """Which release serves each channel, as one read saw them."""

    by_name: dict[str, Channel]

    def get(self, name: str) -> Channel | None:
        return self.by_name.get(name)

    @property
    def stable(self) -> Channel | None:
        return self.by_name.get("stable")

    @property
    def canary(self) -> Channel | None:
        return self.by_name.get("canary")

    @property
    def shadow(self) -> Channel | None:
        return self.by_name.get("shadow")

    @property
    def dry_run(self) -> Channel | None:
        return self.by_name.get("dry_run")


class Releases:
    """Records releases and moves them between channels; each move is an audit entry."""

    def __init__(self, store: Store, audit: AuditLog, clock: Clock) -> None:
        self.store, self.audit, self.clock = store, audit, clock

    # -- releases ------------------------------------------------------------------------

    def create(self, manifest: Manifest, note: str, actor: str) -> Release:
        note = note.strip()
        if not note:
            raise ConfigError(
                'a release needs a note saying what changed: --note "what changed and why"'
            )
        now = self.clock.now()
        with self.store.write() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(releases)).scalar_one()
            release_id = f"r{count + 1}"
            conn.execute(
                releases.insert().values(
                    id=release_id,
                    digest=manifest.digest,
                    manifest=manifest.model_dump(mode="json"),
                    note=note,
                    created_by=actor,
                    created_at=now,
                )
            )
            event = ReleaseCreated(
                release_id, manifest.digest, manifest.policy.version, note, actor
            )
            self._audit(conn, event)
        return Release(release_id, manifest.digest, manifest, note, actor, now)

    def get(self, release_id: str) -> Release:
        with self.store.read() as conn:
            row = conn.execute(sa.select(releases).where(releases.c.id == release_id)).first()
        if row is None:
            raise ConfigError(f"no release {release_id!r}; `proctor release list` shows them")
        return _release(row)

    def all(self) -> list[Release]:
        with self.store.read() as conn:
            rows = conn.execute(sa.select(releases).order_by(releases.c.created_at))
            return sorted((_release(r) for r in rows), key=lambda r: int(r.id[1:]))

    def same_as(self, manifest: Manifest) -> list[str]:
        """Releases recorded with this very manifest."""
        with self.store.read() as conn:
            query = sa.select(releases.c.id).where(releases.c.digest == manifest.digest)
            return [r.id for r in conn.execute(query)]

    # -- channels ------------------------------------------------------------------------

    def channels(self) -> Channels:
        with self.store.read() as conn:
            return read_channels(conn)

    def promote(self, release_id: str, actor: str, reason: str = "") -> None:
        """``release_id`` serves every new run; a canary or shadow of it ends."""
        self.get(release_id)
        with self.store.write() as conn:
            now = read_channels(conn)
            if now.stable is not None and now.stable.release == release_id:
                raise ConfigError(f"{release_id} is already the stable release")
            for channel in ("canary", "shadow"):
                held = now.get(channel)
                if held is not None and held.release == release_id:
                    self._clear(conn, channel, "promote", held.release, actor, reason)
            previous = now.stable.release if now.stable else None
            self._set(conn, "stable", release_id, 1.0, "promote", previous, actor, reason)

    def canary(self, release_id: str, percent: float, actor: str, reason: str = "") -> None:
        if not 0 < percent <= 100:
            raise ConfigError(f"--percent must be above 0 and at most 100, not {percent:g}")
        self.get(release_id)
        with self.store.write() as conn:
            now = read_channels(conn)
            self._needs_stable(now, release_id, "canary")
            previous = now.canary.release if now.canary else None
            self._set(conn, "canary", release_id, percent / 100, "canary", previous, actor, reason)

    def shadow(self, release_id: str, fraction: float, actor: str, reason: str = "") -> None:
        if not 0 < fraction <= 1:
            raise ConfigError(f"--fraction must be above 0 and at most 1, not {fraction:g}")
        self.get(release_id)
        with self.store.write() as conn:
            now = read_channels(conn)
            self._needs_stable(now, release_id, "shadow")
            previous = now.shadow.release if now.shadow else None
            self._set(conn, "shadow", release_id, fraction, "shadow", previous, actor, reason)

    def dry_run(self, release_id: str, actor: str, reason: str = "") -> None:
        self.get(release_id)
        with self.store.write() as conn:
            now = read_channels(conn)
            self._needs_stable(now, release_id, "dry-run")
            previous = now.dry_run.release if now.dry_run else None
            self._set(conn, "dry_run", release_id, 1.0, "dry_run", previous, actor, reason)

    def stop(self, channel: str, actor: str, reason: str = "") -> str:
        """Empty ``shadow`` or ``dry_run``; the release it served."""
        if channel not in ("shadow", "dry_run"):
            raise ConfigError(f"only shadow and dry_run stop; the canary rolls back, not {channel}")
        with self.store.write() as conn:
            held = read_channels(conn).get(channel)
            if held is None:
                raise ConfigError(f"no release is in {channel.replace('_', '-')}")
            self._clear(conn, channel, "stop", held.release, actor, reason)
            return held.release

    def rollback(self, actor: str, reason: str, *, to: str | None = None) -> str:
        """New runs go to stable (the canary ends; its runs in flight finish under it), or,
        with ``to``, to that earlier release, made stable. The release rolled back from."""
        if to is not None:
            self.get(to)
        with self.store.write() as conn:
            now = read_channels(conn)
            if to is None:
                if now.canary is None:
                    raise ConfigError(
                        "no canary to roll back; to go back to an earlier stable release "
                        "give it: proctor release rollback --to RELEASE"
                    )
                self._clear(conn, "canary", "rollback", now.canary.release, actor, reason)
                return now.canary.release
            if now.stable is None or now.stable.release == to:
                raise ConfigError(f"{to} is already stable (or nothing is): nothing to roll back")
            if now.canary is not None:
                self._clear(conn, "canary", "rollback", now.canary.release, actor, reason)
            self._set(conn, "stable", to, 1.0, "rollback", now.stable.release, actor, reason)
            return now.stable.release

    def breached(self, verdict: SloVerdict, actor: str) -> bool:
        """Roll the canary of ``verdict`` back, with the breach and its figures in the audit
        log, in one transaction; False when that canary is gone already (another worker
        rolled it back, or a person moved it)."""
        with self.store.write() as conn:
            now = read_channels(conn)
            if now.canary is None or now.canary.release != verdict.canary:
                return False
            failures = [
                {
                    "objective": r.objective,
                    "stable": r.stable,
                    "canary": r.canary,
                    "target": r.target,
                    "samples": list(r.samples),
                    "explanation": r.explanation,
                }
                for r in verdict.failures
            ]
            self._audit(conn, ReleaseSloBreached(verdict.canary, verdict.stable, failures))
            reason = "SLO breached: " + "; ".join(
                f"{r.objective} {r.explanation}" for r in verdict.failures
            )
            self._clear(conn, "canary", "rollback", verdict.canary, actor, reason)
            return True

    def _needs_stable(self, now: Channels, release_id: str, what: str) -> None:
        if now.stable is None:
            raise ConfigError(
                f"no stable release to {what} beside; make one stable first: "
                "proctor release promote RELEASE"
            )
        if now.stable.release == release_id:
            raise ConfigError(f"{release_id} is the stable release; {what} a candidate")

    def _set(
        self,
        conn: sa.Connection,
        channel: str,
        release_id: str,
        share: float,
        action: str,
        previous: str | None,
        actor: str,
        reason: str,
    ) -> None:
        values = {"release": release_id, "share": share, "since": self.clock.now(), "set_by": actor}
        done = conn.execute(
            release_channels.update().where(release_channels.c.channel == channel).values(values)
        )
        if done.rowcount == 0:
            conn.execute(release_channels.insert().values(channel=channel, **values))
        self._audit(conn, ReleaseMoved(action, channel, release_id, previous, share, actor, reason))

    def _clear(
        self, conn: sa.Connection, channel: str, action: str, was: str, actor: str, reason: str
    ) -> None:
        conn.execute(release_channels.delete().where(release_channels.c.channel == channel))
        self._audit(conn, ReleaseMoved(action, channel, None, was, 0.0, actor, reason))

    def _audit(self, conn: sa.Connection, event: AuditEvent) -> None:
        self.audit.append(conn, RELEASES_TENANT, event, run_id=None, step=None, bundle_version="")


@dataclass(frozen=True)
class Transition:
    """One entry of the releases' audit chain, read back."""

    seq: int
    kind: str
    at: str
    payload: dict[str, Any]


def transitions(conn: sa.Connection, kind: str | None = None) -> list[Transition]:
    """The releases' audit entries, oldest first (only ``kind``, if given)."""
    e, p = audit_entries.c, audit_payloads.c
    query = (
        sa.select(e.seq, e.kind, e.created_at, p.body)
        .select_from(audit_entries.join(audit_payloads, p.entry_id == e.entry_id))
        .where(e.tenant == RELEASES_TENANT)
        .order_by(e.seq)
    )
    if kind is not None:
        query = query.where(e.kind == kind)
    return [
        Transition(r.seq, r.kind, r.created_at, json.loads(r.body) if r.body else {})
        for r in conn.execute(query)
    ]


def read_channels(conn: sa.Connection) -> Channels:
    rows = conn.execute(sa.select(release_channels))
    return Channels({r.channel: Channel(r.release, r.share, r.since, r.set_by) for r in rows})


def _release(row: Any) -> Release:
    return Release(
        row.id,
        row.digest,
        Manifest.model_validate(row.manifest),
        row.note,
        row.created_by,
        row.created_at,
    )
