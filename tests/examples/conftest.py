"""The support example on a fresh world and a fresh SQLite store for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proctor import Mode, Run, RunSpec, Runtime, Settings
from proctor.examples.support import BUNDLE, World, support_tools
from proctor.policy import PolicyBundle


@pytest.fixture(scope="session")
def bundle() -> PolicyBundle:
    return PolicyBundle.load(BUNDLE)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World.create(tmp_path / "world.db")


class Support:
    """A runtime governing the support tools over one world."""

    def __init__(self, runtime: Runtime, world: World) -> None:
        self.runtime = runtime
        self.world = world

    async def start(self, *, mode: Mode = Mode.NORMAL, **overrides: Any) -> Run:
        values: dict[str, Any] = {
            "agent": "support-bot",
            "role": "support_agent",
            "tenant": "acme",
            "workflow": "support",
            "requester": "alice",
            "mode": mode,
        }
        values.update(overrides)
        return await self.runtime.start_run(RunSpec(**values))


@pytest.fixture
def runtime(tmp_path: Path, world: World, bundle: PolicyBundle) -> Iterator[Runtime]:
    home = tmp_path / "home"
    home.mkdir()
    rt = Runtime(
        policy=bundle,
        tools=support_tools(world),
        settings=Settings(home=home, db_url=f"sqlite:///{home / 'proctor.db'}"),
    )
    yield rt
    rt.close()


@pytest.fixture
def support(runtime: Runtime, world: World) -> Support:
    return Support(runtime, world)
