"""The ``proctor`` command run as a user runs it, with its state under a temporary folder."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from proctor import CallStatus, RunSpec, Runtime, Settings
from proctor.cli.main import app
from proctor.testing import ManualClock

from .shop import BUNDLE as SHOP_BUNDLE
from .shop import app as shop_app

DEMO_BUNDLE = SHOP_BUNDLE
"""The tiny shop's bundle (``kernel-demo``): what the policy commands are tried on."""
SHOP_APP = "tests.cli.shop:app"
RUN_ID = re.compile(r"run_[0-9a-f]{32}")
APPROVAL_ID = re.compile(r"apr_[0-9a-f]{32}")


@dataclass
class Cli:
    home: Path
    runner: CliRunner

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(app, list(args))

    @property
    def db(self) -> Path:
        return self.home / "proctor.db"

    def sql(self, statement: str, *params: object) -> list[tuple[object, ...]]:
        """Read or change the embedded database directly, as someone with the file could."""
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(statement, params).fetchall()
        conn.close()
        return rows

    def refunds(self) -> list[tuple[str, str, str]]:
        """The shop's system of record: refunds actually issued."""
        return self._refunds(self.home / "demo-shop.db")

    def walkthrough_refunds(self) -> list[tuple[str, str, str]]:
        """The walkthrough's world (the support example's): refunds actually issued."""
        return self._refunds(self.home / "walkthrough" / "world.db")

    @staticmethod
    def _refunds(db: Path) -> list[tuple[str, str, str]]:
        conn = sqlite3.connect(db)
        try:
            return conn.execute(
                "SELECT idempotency_key, order_id, amount FROM refunds ORDER BY idempotency_key"
            ).fetchall()
        finally:
            conn.close()

    def pending_refund(
        self, amount: str = "400.00", *, at: datetime | None = None
    ) -> tuple[str, str]:
        """A shop run held for a supervisor's approval: ``(run id, approval id)``."""

        async def go() -> tuple[str, str]:
            clock = ManualClock(at) if at is not None else None
            rt = Runtime.for_app(shop_app(), Settings(), clock=clock)
            try:
                run = await rt.start_run(
                    RunSpec(
                        agent="support-bot",
                        role="support_agent",
                        tenant="demo",
                        workflow="refunds",
                        requester="customer:c-42",
                    )
                )
                outcome = await run.call("issue_refund", {"order_id": "A-1001", "amount": amount})
            finally:
                rt.close()
            assert outcome.status is CallStatus.AWAITING_APPROVAL
            assert outcome.approval_id is not None
            return run.id, outcome.approval_id

        return asyncio.run(go())


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    home = tmp_path / "home"
    monkeypatch.chdir(tmp_path)
    for name in ("PROCTOR_APP", "PROCTOR_AUDIT_KEY_FILE", "PROCTOR_CHECKPOINT_EVERY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PROCTOR_HOME", str(home))
    monkeypatch.setenv("PROCTOR_DB_URL", f"sqlite:///{home / 'proctor.db'}")
    # Wide enough that Rich never wraps an id or a message; no colour codes.
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return Cli(home, CliRunner())
