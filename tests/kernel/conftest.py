from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from proctor import RunSpec, Runtime, Settings
from proctor.budgets import BudgetCaps
from proctor.testing import ManualClock

from .support import Ledger, make_tools, write_bundle


class Env:
    def __init__(self, tmp_path: Path, db_url: str) -> None:
        self.tmp = tmp_path
        self.db_url = db_url
        self.ledger = Ledger(tmp_path / "ledger.db")
        self.bundle = write_bundle(tmp_path / "bundle")
        self.clock = ManualClock()
        self.runtimes: list[Runtime] = []

    def runtime(self, **kwargs: Any) -> Runtime:
        """A new runtime on the same store: what another process would build."""
        kwargs.setdefault("tools", make_tools(self.ledger))
        kwargs.setdefault("policy", self.bundle)
        rt = Runtime(
            settings=Settings(home=self.tmp / "home", db_url=self.db_url, lease_s=30),
            clock=self.clock,
            retry_backoff_s=0.001,
            **kwargs,
        )
        self.runtimes.append(rt)
        return rt

    def spec(self, **overrides: Any) -> RunSpec:
        values: dict[str, Any] = {
            "agent": "bot",
            "role": "agent",
            "tenant": "acme",
            "workflow": "support",
            "requester": "alice",
        }
        values.update(overrides)
        if "budget" in values and isinstance(values["budget"], dict):
            values["budget"] = BudgetCaps(**values["budget"])
        return RunSpec(**values)


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[Env]:
    e = Env(tmp_path, db_url)
    yield e
    for rt in e.runtimes:
        rt.close()


@pytest.fixture
def make_env(tmp_path: Path, db_url: str) -> Callable[[], Env]:
    return lambda: Env(tmp_path, db_url)
