"""Workers: processes that claim ready runs from the shared store and drive them.

A ready run is an agent run that nobody holds: queued (``Agent.queue``), approved
after a pause, or released because its worker's lease lapsed. Any number of
workers, on any number of hosts, share one PostgreSQL database: each claims runs
under its own lease (``FOR UPDATE SKIP LOCKED``, so two never claim the same run),
and every write it makes to a run is fenced on that lease's generation, so a worker
that stalls past its lease can no longer write once another has taken the run.
Budgets are the store's: tenant budgets hold across workers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from proctor.errors import ProctorError
from proctor.runtime import Runtime

log = logging.getLogger("proctor.worker")

Drive = Callable[[str], Awaitable[object]]
"""Drives one claimed run (by id) to its end or its next pause; the agent's ``resume``."""


@dataclass
class Worker:
    """Claims ready runs and drives up to ``concurrency`` of them at once in this process."""

    runtime: Runtime
    drive: Drive
    concurrency: int = 8
    poll_s: float = 0.5
    """How long an idle worker waits before it looks for ready runs again."""
    driven: int = 0
    """Runs this worker has driven to their end or their next pause."""
    failed: int = 0
    """Runs whose driving raised: left to lapse, then claimed again by some worker."""
    _running: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"a worker drives at least one run at a time, not {self.concurrency}")

    async def serve(self, *, stop: asyncio.Event | None = None, until_idle: bool = False) -> None:
        """Claim and drive runs until ``stop`` is set (or, ``until_idle``, until no run is
        ready and none is being driven); then wait for the runs in hand to stop."""
        stop = stop or asyncio.Event()
        wake = asyncio.Event()
        recover_every = min(self.runtime.services.lease.seconds / 2, 30.0)
        loop = asyncio.get_running_loop()
        next_recovery = loop.time()
        try:
            while not stop.is_set():
                if loop.time() >= next_recovery:
                    await self._recover()
                    next_recovery = loop.time() + recover_every
                free = self.concurrency - len(self._running)
                claimed = await self._claim(free) if free else []
                for run_id in claimed:
                    self._start(run_id, wake)
                if until_idle and not claimed and not self._running:
                    return
                if claimed and len(claimed) == free:
                    continue  # more may be ready: look again once a slot frees
                wake.clear()
                waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
                await asyncio.wait(waiters, timeout=self.poll_s, return_when="FIRST_COMPLETED")
                for waiter in waiters:
                    waiter.cancel()
        finally:
            if self._running:
                await asyncio.gather(*self._running, return_exceptions=True)

    async def _claim(self, limit: int) -> list[str]:
        try:
            return await self.runtime.claim(limit)
        except Exception:  # the store may be down for a moment: try again next time
            log.exception("could not claim ready runs")
            return []

    async def _recover(self) -> None:
        try:
            recovered = await asyncio.to_thread(self.runtime.recover_expired)
        except Exception:
            log.exception("could not release the runs of dead workers")
            return
        for run_id in recovered.runs:
            log.warning("run %s: its worker's lease lapsed; ready for another worker", run_id)

    def _start(self, run_id: str, wake: asyncio.Event) -> None:
        async def go() -> None:
            try:
                await self.drive(run_id)
                self.driven += 1
            except ProctorError as exc:
                self.failed += 1
                log.warning("run %s stopped on this worker: %s", run_id, exc)
            except Exception:
                self.failed += 1
                log.exception("run %s failed on this worker; it is claimed again later", run_id)

        task = asyncio.get_running_loop().create_task(go(), name=f"drive {run_id}")
        self._running.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._running.discard(t)
            wake.set()

        task.add_done_callback(done)
