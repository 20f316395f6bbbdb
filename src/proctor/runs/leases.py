"""The heartbeat that keeps a worker's lease on a run alive through a long call.

A worker holds a run under a lease with a generation number, its fencing token:
the recorder renews the lease with every write and refuses every write once
another worker has taken the run over. A call that may outlive the lease (a slow
tool, a model thinking) renews it from a heartbeat meanwhile, so no other worker
takes the run over while the call is in flight.
"""

from __future__ import annotations

import asyncio
import logging

from proctor.runs.model import RunRecord
from proctor.runs.recorder import Recorder
from proctor.services import Services

log = logging.getLogger("proctor")


def heartbeat(
    services: Services, recorder: Recorder, run: RunRecord, worst_case_s: float
) -> asyncio.Task[None] | None:
    """A task renewing the lease every third of it while a call of up to ``worst_case_s``
    runs; ``None`` when the lease outlasts the call anyway. Cancel it when the call ends."""
    left = (run.lease_until - services.clock.now()).total_seconds() if run.lease_until else 0
    if worst_case_s < left:
        return None
    return asyncio.create_task(_beat(services.lease.seconds, recorder, run))


async def _beat(seconds: float, recorder: Recorder, run: RunRecord) -> None:
    while True:
        await asyncio.sleep(seconds / 3)
        try:
            await recorder.keep(run)
        except Exception as exc:
            # The call cannot be stopped from here; say loudly that its outcome will not
            # be recorded by this worker if the run was taken over.
            log.error("run %s: could not keep its lease during a call: %s", run.id, exc)
            return
