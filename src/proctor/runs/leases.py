"""The lease a worker holds on a run while it works on it.

A run is worked on by one worker at a time. The lease is taken when the run
opens or is resumed, renewed as the run records intents, kept alive by a
heartbeat while a long call is in flight, and released when the run pauses or
ends, so that another worker may take the run over once it lapses.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

import sqlalchemy as sa

from proctor.runs import journal
from proctor.services import Services

log = logging.getLogger("proctor")


class LeaseKeeper:
    """This worker's lease on one run."""

    def __init__(self, services: Services, run_id: str, until: datetime | None) -> None:
        self._s = services
        self._run_id = run_id
        self.until = until
        """When the lease lapses; ``None`` when this worker does not hold it."""

    @property
    def seconds(self) -> float:
        return self._s.lease.seconds

    def keep(self, conn: sa.Connection) -> None:
        """Hold the run while it works (in the caller's transaction); a run this worker
        released, or whose lease is half gone, is taken (back) here. ``RunBusy`` if
        another worker holds it."""
        now = self._s.clock.now()
        if self.until is None or (self.until - now).total_seconds() < self.seconds / 2:
            lease = timedelta(seconds=self.seconds)
            journal.claim(conn, self._run_id, self._s.lease.worker_id, now, lease)
            self.until = now + lease

    def lapsed(self) -> None:
        """The run paused or ended: the store no longer names this worker."""
        self.until = None

    def release(self) -> None:
        """Let another worker take the run at once, instead of after this lease."""
        with self._s.store.write() as conn:
            journal.release(conn, self._run_id, self._s.lease.worker_id)
        self.until = None

    def heartbeat_for(self, worst_case_s: float) -> asyncio.Task[None] | None:
        """Keep the lease alive while a call that may outlive it runs, so no other worker
        takes the run over mid-call; ``None`` when the lease outlasts the call anyway."""
        left = (self.until - self._s.clock.now()).total_seconds() if self.until else 0
        if worst_case_s < left:
            return None
        return asyncio.create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                with self._s.store.write(durable=False) as conn:
                    self.until = None  # force a renewal
                    self.keep(conn)
            except Exception as exc:
                # The call cannot be stopped from here; say loudly that the run may be
                # taken over while it is in flight.
                log.error("run %s: could not keep its lease during a call: %s", self._run_id, exc)
                return
