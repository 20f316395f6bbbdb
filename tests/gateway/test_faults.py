"""An upstream that crashes or stalls gives a clear error and the run goes on; a gateway
killed between a call's intent and its outcome is settled when a gateway starts again,
never by sending the call again."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from proctor.gateway import open_gateway
from proctor.runs.views import load_run
from proctor.settings import Settings
from proctor.states import RunState, StepStatus
from proctor.store.tables import runs
from tests.gateway.conftest import Setup

KILLED = """
import asyncio, sys
from proctor.gateway import open_gateway
from proctor.settings import Settings
from proctor.store.tables import runs

async def main() -> None:
    async with open_gateway(sys.argv[1]) as gateway:
        session = gateway.session("conversation-1", gateway.spec("demo", "alice"))
        await gateway.call(session, "slow_write", {"name": "n"})

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_an_upstream_that_crashes_or_stalls_fails_the_call_not_the_run(
    setup: Setup,
) -> None:
    setup.add_faulty()
    async with open_gateway(setup.config) as gateway:
        session = gateway.session("s-1", gateway.spec("demo", "alice"))
        crashed, _ = await gateway.call(session, "crash", {})
        assert crashed.is_error
        assert "upstream server faulty closed during crash" in crashed.content[0].text  # type: ignore[union-attr]
        stalled, verdict = await gateway.call(session, "stall", {})
        assert stalled.is_error
        assert verdict is not None
        assert verdict.status == "failed"
        assert "stall failed" in stalled.content[0].text  # type: ignore[union-attr]
        echoed, verdict = await gateway.call(session, "echo", {"text": "still here"})
        assert echoed.structured_content == {"text": "still here"}
        assert verdict is not None
        assert verdict.outcome is not None
        run_id = verdict.outcome.run_id
        with gateway.runtime.store.read() as conn:
            view = load_run(conn, run_id)
        assert [s.tool for s in view.steps] == ["crash", "stall", "echo"]
        assert view.state is RunState.RUNNING
        metrics = gateway.metrics.text()
        assert 'proctor_mcp_calls_total{server="faulty",tool="crash",status="failed"} 1' in metrics


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("reconcile", [True, False])
async def test_a_gateway_killed_mid_call_is_settled_never_retried(
    setup: Setup, reconcile: bool
) -> None:
    setup.add_faulty(reconcile=reconcile)
    env = setup.env(PROCTOR_LEASE_S="1")
    worker = subprocess.Popen([sys.executable, "-c", KILLED, str(setup.config)], env=env)
    try:
        deadline = time.monotonic() + 30
        while setup.counts().get("slow_write") != 1:  # the effect happened upstream
            assert time.monotonic() < deadline, "the upstream never ran slow_write"
            assert worker.poll() is None
            await asyncio.sleep(0.05)
        worker.kill()  # before the gateway records the outcome
    finally:
        worker.wait()
    await asyncio.sleep(1.2)  # its lease lapses
    settings = Settings(home=setup.home, lease_s=1)
    async with open_gateway(setup.config, settings) as gateway:
        run_id = gateway.runtime.live_run_of("demo", "conversation-1")
        with gateway.runtime.store.read() as conn:
            (run,) = [load_run(conn, r) for r in conn.execute(sa.select(runs.c.id)).scalars()]
    assert run_id is None
    (step,) = run.steps
    assert setup.counts()["slow_write"] == 1  # never sent again
    if reconcile:
        assert step.status is StepStatus.SUCCEEDED  # the upstream said it happened
        assert run.state is RunState.COMPLETED
    else:
        assert step.status is StepStatus.OUTCOME_UNKNOWN
        assert run.state is RunState.HANDED_OFF
        assert run.reason is not None
        assert run.reason.value == "outcome_unknown"
