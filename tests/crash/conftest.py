"""Crash tests: worker processes that SIGKILL themselves, and the store they leave behind."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from proctor import RunBusy, Runtime
from proctor.audit import SigningKey
from proctor.clock import SystemClock
from proctor.store.tables import audit_entries, audit_payloads, runs, steps
from proctor.testing import TestEnvironment
from tests.shop import POLICY, Ledger, make_tools, shop_yaml

from .worker import settings_for

ROOT = Path(__file__).resolve().parents[2]
LEASE_S = 1.0
"""Short, so a resume can take a dead worker's run over soon; long enough to see it busy."""
PROCESS_TIMEOUT_S = 60

Trail = list[tuple[str, int | None]]


def child_env() -> dict[str, str]:
    """The parent's environment without proctor settings, and the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCTOR_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("PYTHONSTARTUP", None)
    return env


class Crash:
    """One test's world: a store, a ledger, a policy bundle, and the processes run on them."""

    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.db_url = db_url
        self.home = tmp_path / "home"
        self.ledger = Ledger(tmp_path / "ledger.db")
        self.procs: list[subprocess.Popen[str]] = []
        settings = settings_for(self.home, db_url, LEASE_S)
        SigningKey.load_or_generate(settings.key_path)
        # Leases expire in real time, across processes: the real clock.
        self.env = TestEnvironment(
            POLICY,
            proctor_yaml=shop_yaml(),
            tools=make_tools(self.ledger),
            db_url=db_url,
            directory=tmp_path,
            clock=SystemClock(),
            settings=settings,
        )
        self.bundle = tmp_path / "bundle"
        # Built before any worker: migrates the store and makes the audit key once.
        self.rt = self.env.runtime

    def runtime(self) -> Runtime:
        """A runtime of this (test) process: it never runs a tool of the tests below."""
        return self.env.new_runtime()

    def close(self) -> None:
        for proc in self.procs:  # only ones a failed test left running
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        self.env.close()

    # -- processes -----------------------------------------------------------------------

    def spawn(self, command: str, *args: str) -> subprocess.Popen[str]:
        """Start the worker in a new process, without waiting for it."""
        argv = [
            sys.executable, "-m", "tests.crash.worker", command,
            "--db", self.db_url, "--home", str(self.home), "--ledger", str(self.ledger.path),
            "--bundle", str(self.bundle), "--lease", str(LEASE_S), *args,
        ]  # fmt: skip
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=child_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.procs.append(proc)
        return proc

    @staticmethod
    def finish(proc: subprocess.Popen[str], *, killed: bool = False) -> list[dict[str, Any]]:
        """Wait for a worker; its JSON events. ``killed``: it must have died by SIGKILL."""
        try:
            stdout, stderr = proc.communicate(timeout=PROCESS_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            pytest.fail(f"worker {proc.args} hung\nstdout:\n{stdout}\nstderr:\n{stderr}")
        expected = -signal.SIGKILL if killed else 0
        assert proc.returncode == expected, (
            f"worker {' '.join(map(str, proc.args))}\nexited {proc.returncode}, expected "
            f"{expected}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        )
        events = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        if killed:
            assert events, stdout
            assert events[-1]["event"] == "kill", events
        return events

    def worker(self, command: str, *args: str, killed: bool = False) -> list[dict[str, Any]]:
        """Run the worker in a new process to its end; its JSON events."""
        return self.finish(self.spawn(command, *args), killed=killed)

    async def assert_busy(self, run_id: str) -> None:
        """The dead worker's lease still holds: nobody takes the run over yet."""
        with pytest.raises(RunBusy, match="held by worker"):
            await self.rt.resume(run_id)

    def wait_out_lease(self, run_id: str) -> None:
        until = self.run_row(run_id).lease_until
        assert until is not None, "the run has no lease to wait out"
        left = (until - datetime.now(UTC)).total_seconds()
        assert left < LEASE_S + 0.5, left
        if left > -0.05:
            time.sleep(left + 0.05)

    # -- the store -----------------------------------------------------------------------

    def run_row(self, run_id: str) -> Any:
        with self.rt.store.read() as conn:
            return conn.execute(sa.select(runs).where(runs.c.id == run_id)).one()

    def step_rows(self, run_id: str) -> list[Any]:
        with self.rt.store.read() as conn:
            return list(
                conn.execute(sa.select(steps).where(steps.c.run_id == run_id).order_by(steps.c.idx))
            )

    def trail(self, run_id: str) -> Trail:
        """The run's audit entries, in chain order: (kind, step)."""
        with self.rt.store.read() as conn:
            return [
                (kind, step)
                for kind, step in conn.execute(
                    sa.select(audit_entries.c.kind, audit_entries.c.step)
                    .where(audit_entries.c.run_id == run_id)
                    .order_by(audit_entries.c.seq)
                )
            ]

    def payloads(self, run_id: str, kind: str) -> list[dict[str, Any]]:
        with self.rt.store.read() as conn:
            rows = conn.execute(
                sa.select(audit_payloads.c.body)
                .join(audit_entries, audit_entries.c.entry_id == audit_payloads.c.entry_id)
                .where(audit_entries.c.run_id == run_id, audit_entries.c.kind == kind)
                .order_by(audit_entries.c.seq)
            )
            return [json.loads(body) for (body,) in rows]

    def verify(self, run_id: str, trail: Trail) -> None:
        """A runtime built afresh verifies the whole log, and holds every entry of the run."""
        rt = self.runtime()
        report = rt.verify_audit()
        assert report.ok, [str(p) for p in report.problems]
        with rt.store.read() as conn:
            total = conn.execute(sa.select(sa.func.count()).select_from(audit_entries)).scalar()
        assert report.checked == total == len(trail)
        assert_intents_settled(trail)

    # -- the system of record ------------------------------------------------------------

    def invocations(self, tool: str) -> dict[str, int]:
        """How many times the tool's code ran, per idempotency key ('' for key-less tools)."""
        with sqlite3.connect(self.ledger.path) as conn:
            rows = conn.execute(
                "SELECT key, count(*) FROM attempts WHERE tool = ? GROUP BY key",
                (f"invoked:{tool}",),
            ).fetchall()
        return dict(rows)

    def effects(self, tool: str) -> dict[str, str]:
        return {key: body for key, _, body in self.ledger.effects(tool)}


def assert_intents_settled(trail: Trail) -> None:
    """Every intent has exactly one outcome after it; no outcome or reconcile without an intent."""
    intents = Counter(step for kind, step in trail if kind == "action.intent")
    outcomes = Counter(step for kind, step in trail if kind == "action.outcome")
    assert all(n == 1 for n in intents.values()), f"a step announced twice: {trail}"
    assert outcomes == intents, f"an intent without its one outcome: {trail}"
    for i, (kind, step) in enumerate(trail):
        if kind in ("action.outcome", "action.reconciled"):
            assert ("action.intent", step) in trail[:i], f"{kind} of step {step} before intent"


def key(run_id: str, step: int) -> str:
    return f"{run_id}/{step}"


def events_of(events: list[dict[str, Any]], kind: str, phase: str | None = None) -> list[Any]:
    return [e for e in events if e["event"] == kind and (phase is None or e["phase"] == phase)]


@pytest.fixture
def crash(tmp_path: Path, db_url: str) -> Iterator[Crash]:
    env = Crash(tmp_path, db_url)
    yield env
    env.close()
