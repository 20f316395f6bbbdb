"""The service releases, by itself, the runs of workers that died."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import sqlalchemy as sa
from fastapi.testclient import TestClient

from proctor import RunSpec, Runtime, Settings
from proctor.server.app import create_app
from proctor.store.tables import audit_entries, runs
from tests.shop import Ledger, make_tools, write_bundle


def test_the_service_releases_a_dead_workers_run_for_another_worker(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", lease_s=0.2)
    bundle = write_bundle(tmp_path / "bundle")
    dead = Runtime(policy=bundle, tools=make_tools(Ledger(tmp_path / "l.db")), settings=settings)
    spec = RunSpec(agent="bot", role="agent", tenant="acme", workflow="w", requester="alice")
    run = asyncio.run(dead.start_run(spec))
    asyncio.run(run.call("lookup", {"order_id": "A-1"}))
    dead.close()  # its worker is gone; the run stays running under a lease that lapses

    rt = Runtime(policy=bundle, settings=settings, telemetry=None)
    try:
        with TestClient(create_app(rt, resume_runs=True)):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with rt.store.read() as conn:
                    row = conn.execute(sa.select(runs).where(runs.c.id == run.id)).one()
                if row.owner is None:
                    break
                time.sleep(0.05)
        assert (row.state, row.owner, row.lease_generation) == ("running", None, 2)
        with rt.store.read() as conn:
            kinds = list(
                conn.execute(
                    sa.select(audit_entries.c.kind).where(audit_entries.c.run_id == run.id)
                ).scalars()
            )
        assert kinds[-1] == "run.reclaimed"  # and not ended: its own code goes on with it
    finally:
        rt.close()
