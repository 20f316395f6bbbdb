"""The rollback switch the SLOs drive: judge the canary, and roll it back on a breach.

Every worker checks as its canary runs end (at most every ``slo.check_every_s``, and at
once after a run with an incident of a kind the SLOs forbid), and
``proctor release monitor`` checks from outside; a breach is rolled back once, however
many workers see it. New runs go to stable at once; runs the canary opened finish
under their own release.
"""

from __future__ import annotations

import logging
import time

import sqlalchemy as sa

from proctor.clock import Clock
from proctor.releases.registry import Releases
from proctor.releases.serving import ReleaseServing
from proctor.releases.slo import SloVerdict, judge, run_incidents
from proctor.store.tables import runs

log = logging.getLogger("proctor")

MONITOR = "slo-monitor"
"""Who rolls back on a breach, as the audit log names it."""


class Monitor:
    def __init__(self, releases: Releases, serving: ReleaseServing, clock: Clock) -> None:
        self.releases, self.serving, self.clock = releases, serving, clock
        self._checked_at = -float("inf")
        self.last: SloVerdict | None = None
        """The verdict of this worker's last check."""

    def verdict(self) -> SloVerdict | None:
        """The canary against the stable release now; None without a canary."""
        now = self.releases.channels()
        if now.stable is None or now.canary is None:
            return None
        stable = self.serving.release(now.stable.release)
        settings = self.serving.bundle(stable).settings.slo
        with self.releases.store.read() as conn:
            return judge(conn, settings, stable.id, now.canary.release, self.clock.now())

    def check(self) -> SloVerdict | None:
        """Judge the canary and roll it back if it breaches; the verdict (None without a
        canary)."""
        self._checked_at = time.monotonic()
        verdict = self.last = self.verdict()
        if verdict is not None and verdict.breached:
            if self.releases.breached(verdict, MONITOR):
                log.warning(
                    "release %s rolled back: its SLOs are breached (%s)",
                    verdict.canary,
                    "; ".join(f"{r.objective}: {r.explanation}" for r in verdict.failures),
                )
            self.serving.changed()
        return verdict

    def run_ended(self, run_id: str) -> None:
        """A run ended in this worker: if it was the canary's, check, when the last check
        is old enough or at once when the run had an incident the SLOs forbid."""
        now = self.serving.channels()
        if now.canary is None or now.stable is None:
            return
        slo = self.serving.bundle(self.serving.release(now.stable.release)).settings.slo
        with self.releases.store.read() as conn:
            release = conn.execute(sa.select(runs.c.release).where(runs.c.id == run_id)).scalar()
            if release != now.canary.release:
                return
            due = time.monotonic() - self._checked_at >= slo.check_every_s
            forbidden = [kind for kind, o in slo.incidents.items() if o.max_rate == 0]
            if not due and forbidden:
                found = run_incidents(conn, run_id, now.stable.release)
                due = any(found[kind] for kind in forbidden)
        if due:
            self.check()
