"""``proctor worker``: claim ready runs from the store and drive them with the app's agent."""

from __future__ import annotations

import asyncio
import signal

import typer

from proctor.agent.factory import agent_for_app
from proctor.app import App, load_app
from proctor.cli._common import RUN_APP_OPTION, console, fails_clearly, run_async
from proctor.runtime import Runtime
from proctor.settings import load_settings
from proctor.worker import Worker


@fails_clearly
def worker(
    app_ref: str = RUN_APP_OPTION,
    concurrency: int = typer.Option(8, min=1, help="Runs this process drives at once."),
    poll_s: float = typer.Option(
        0.5, "--poll", min=0.01, help="Seconds an idle worker waits before it looks again."
    ),
    until_idle: bool = typer.Option(
        False, "--until-idle", help="Exit once no run is ready and none is being driven."
    ),
) -> None:
    """Claim ready agent runs and drive them: queued runs (`proctor run --queue`), runs
    approved after a pause, and runs whose worker died. Run as many as you like, on any
    hosts, against one PostgreSQL database (PROCTOR_DB_URL); SIGTERM or Ctrl-C stops
    claiming and lets the runs in hand reach their next stop."""
    settings = load_settings()
    app = load_app(app_ref)
    rt = Runtime.for_app(app, settings)
    try:
        run_async(_serve(rt, app, concurrency, poll_s, until_idle))
    finally:
        rt.close()


async def _serve(rt: Runtime, app: App, concurrency: int, poll_s: float, idle: bool) -> None:
    agent = agent_for_app(rt, app)

    async def drive(run_id: str) -> object:
        return await agent.resume(run_id)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    pool = Worker(rt, drive, concurrency=concurrency, poll_s=poll_s)
    console.print(
        f"worker {rt.services.lease.worker_id}: driving up to {concurrency} runs at once "
        f"from {rt.store.dialect}"
    )
    try:
        await pool.serve(stop=stop, until_idle=idle)
    finally:
        await agent.aclose()
    console.print(f"worker stopped: {pool.driven} runs driven, {pool.failed} failed")
