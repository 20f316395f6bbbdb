"""The workspace example on a fresh world and a fresh SQLite store for each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proctor import Run, RunSpec, Runtime, Settings
from proctor.examples.workspace import BUNDLE, World, workspace_tools
from proctor.policy import PolicyBundle


@pytest.fixture(scope="session")
def ws_bundle() -> PolicyBundle:
    return PolicyBundle.load(BUNDLE)


@pytest.fixture
def ws_world(tmp_path: Path) -> World:
    return World.create(tmp_path / "workspace.db")


class Workspace:
    """A runtime governing the workspace tools over one world."""

    def __init__(self, runtime: Runtime, world: World) -> None:
        self.runtime = runtime
        self.world = world

    async def start(self, request: str) -> Run:
        """A run for ``request``, its words trusted as the agent loop trusts a request."""
        spec = RunSpec(
            agent="assistant-bot",
            role="assistant",
            tenant="emma",
            workflow="assistant",
            requester="emma-chat",
        )
        run = await self.runtime.start_run(spec)
        run.trust(request)
        return run


@pytest.fixture
def workspace(tmp_path: Path, ws_world: World, ws_bundle: PolicyBundle) -> Iterator[Workspace]:
    home = tmp_path / "home"
    home.mkdir()
    rt = Runtime(
        policy=ws_bundle,
        tools=workspace_tools(ws_world),
        settings=Settings(home=home, db_url=f"sqlite:///{home / 'proctor.db'}"),
    )
    yield Workspace(rt, ws_world)
    rt.close()
