"""Which release a new run opens under, and the bundle each release decides with.

A run goes to the canary when its bucket, a hash of its tenant, its requester and the
canary's id, falls under the canary's share: the same person stays on the same side
for as long as that canary lasts, and raising the share only adds people. A run is
shadowed when a hash of its id falls under the shadow's fraction.

A release's bundle is read from the store (every bundle a release names is kept there
from its creation), written once under the proctor home and loaded from there; its
digest is checked against the manifest's.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from proctor.errors import ConfigError
from proctor.policy import PolicyBundle
from proctor.releases.registry import Channels, Release, Releases, read_channels
from proctor.runs.model import RunSpec
from proctor.store import Store
from proctor.store.tables import policy_bundles

log = logging.getLogger("proctor")

BUCKETS = 10_000


def canary_bucket(tenant: str, requester: str, canary: str) -> int:
    """Where ``(tenant, requester)`` falls for ``canary``: 0 to ``BUCKETS - 1``."""
    key = f"{tenant}\0{requester}\0{canary}".encode()
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % BUCKETS


def on_canary(spec: RunSpec, canary: str, share: float) -> bool:
    return canary_bucket(spec.tenant, spec.requester, canary) < round(share * BUCKETS)


def sampled(run_id: str, fraction: float) -> bool:
    """Whether the run with this id is in a ``fraction`` sample (by its id, so any worker
    agrees)."""
    bucket = int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:8], "big") % BUCKETS
    return bucket < round(fraction * BUCKETS)


@dataclass(frozen=True)
class Placement:
    """Where a new run goes: the release it opens under, and what runs beside it."""

    run_id: str
    release: Release | None
    """None when no release is stable yet: the runtime's own bundle decides."""
    channel: str | None
    """``stable`` or ``canary``."""
    bundle: PolicyBundle
    beside: tuple[str, PolicyBundle] | None = None
    """A release whose bundle decides every call again, log only: the stable release for
    a canary run (its incidents), the dry-run candidate for a stable run."""
    shadow: tuple[Release, PolicyBundle] | None = None
    """The candidate that mirrors this run, if the run is in the shadow's sample."""

    @property
    def release_id(self) -> str | None:
        return None if self.release is None else self.release.id


class ReleaseServing:
    """The channels as this worker last read them (at most ``refresh_s`` ago; at once
    after a change made through it), and the bundles of the releases it serves."""

    def __init__(
        self, releases: Releases, own: PolicyBundle | None, home: Path, refresh_s: float
    ) -> None:
        self.releases = releases
        self._own = own
        self._home = home
        self._refresh_s = refresh_s
        self._read_at = -float("inf")
        self._channels = Channels({})
        self._releases: dict[str, Release] = {}
        self._bundles: dict[str, PolicyBundle] = {} if own is None else {str(own.version): own}

    def channels(self) -> Channels:
        if time.monotonic() - self._read_at >= self._refresh_s:
            with self.releases.store.read() as conn:
                self._channels = read_channels(conn)
            self._read_at = time.monotonic()
        return self._channels

    def changed(self) -> None:
        """The channels changed: read them again before the next run opens."""
        self._read_at = -float("inf")

    def release(self, release_id: str) -> Release:
        found = self._releases.get(release_id)
        if found is None:
            found = self._releases[release_id] = self.releases.get(release_id)
        return found

    def place(self, spec: RunSpec, run_id: str) -> Placement | None:
        """Where a new run goes; None while no release is stable (the runtime's own bundle
        decides, as before releases)."""
        now = self.channels()
        if now.stable is None or self._own is None:
            return None
        stable = self.release(now.stable.release)
        release, channel, beside = stable, "stable", None
        if now.canary is not None and on_canary(spec, now.canary.release, now.canary.share):
            release, channel = self.release(now.canary.release), "canary"
            beside = (stable.id, self.bundle(stable))
        elif now.dry_run is not None:
            candidate = self.release(now.dry_run.release)
            beside = (candidate.id, self.bundle(candidate))
        shadow = None
        if now.shadow is not None and sampled(run_id, now.shadow.share):
            candidate = self.release(now.shadow.release)
            shadow = (candidate, self.bundle(candidate))
        return Placement(run_id, release, channel, self.bundle(release), beside, shadow)

    def beside_of(self, release_id: str | None) -> tuple[str, PolicyBundle] | None:
        """What decides beside a run of ``release_id`` taken over now: the stable release
        beside a canary's run, the dry-run candidate beside a stable run."""
        now = self.channels()
        if release_id is None or now.stable is None:
            return None
        if release_id != now.stable.release:
            stable = self.release(now.stable.release)
            return (stable.id, self.bundle(stable))
        if now.dry_run is not None:
            candidate = self.release(now.dry_run.release)
            return (candidate.id, self.bundle(candidate))
        return None

    def bundle(self, release: Release) -> PolicyBundle:
        return self.bundle_of(release.manifest.policy.version)

    def bundle_of(self, version: str) -> PolicyBundle:
        """The bundle of ``version``, as kept in the store; the runtime's own when it is."""
        found = self._bundles.get(version)
        if found is None:
            found = self._bundles[version] = _load(self.releases.store, version, self._home)
        return found


def _load(store: Store, version: str, home: Path) -> PolicyBundle:
    with store.read() as conn:
        row = conn.execute(
            sa.select(policy_bundles).where(policy_bundles.c.version == version)
        ).first()
    if row is None:
        raise ConfigError(
            f"policy bundle {version} is not kept in the store; a release records its bundle "
            "when it is created (proctor release create)"
        )
    folder = home / "bundles" / row.digest[:16]
    for relative, content in row.files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = base64.b64decode(content)
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
    bundle = PolicyBundle.load(folder)
    if bundle.version.digest != row.digest:
        raise ConfigError(f"{folder} does not hold bundle {version}: remove it and retry")
    return bundle
