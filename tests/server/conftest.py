"""A service over a real runtime: two tenants' runs, one held for approval, and tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from proctor import CallStatus, Runtime
from proctor.models import ModelRequest, ModelResponse, TokenUsage, UserMessage
from proctor.server.app import create_app
from proctor.server.tokens import Role, create_token
from proctor.testing import FunctionModel
from tests.shop import Env

BIG_REFUND = {"order_id": "A-1", "amount": "500.00"}
USAGE = TokenUsage(input_tokens=1000, cached_input_tokens=0, output_tokens=100)
REQUEST = ModelRequest(messages=(UserMessage(content="Where is A-1?"),), max_output_tokens=200)


def _answer(_: ModelRequest) -> ModelResponse:
    return ModelResponse(model="gpt-4o-mini-2024-07-18", content="It shipped.", usage=USAGE)


@dataclass
class World:
    env: Env
    rt: Runtime
    held_run: str
    """acme's run, requested by alice, whose refund waits for a supervisor."""
    approval: str
    other_run: str
    """globex's run: one lookup, no model calls."""
    secrets: dict[str, str] = field(default_factory=dict)

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secrets[name]}"}


TOKENS: dict[str, tuple[Role, str | None, tuple[str, ...]]] = {
    "root": (Role.ADMIN, None, ("supervisor",)),
    "vera": (Role.VIEWER, None, ()),
    "sam": (Role.APPROVER, None, ("supervisor",)),
    "alice": (Role.APPROVER, None, ("supervisor",)),  # the held run's requester
    "acme-viewer": (Role.VIEWER, "acme", ()),
    "globex-sam": (Role.APPROVER, "globex", ("supervisor",)),
    "clerk": (Role.APPROVER, None, ("billing",)),  # approves, but not as a supervisor
    "ops": (Role.ADMIN, None, ()),  # runs the service; holds no policy role
}


async def build_world(env: Env) -> World:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    model = FunctionModel(_answer, name="openai:gpt-4o-mini")
    await run.ask(model, REQUEST)
    await run.ask(model, REQUEST)
    outcome = await run.call("refund", BIG_REFUND)
    assert outcome.status is CallStatus.AWAITING_APPROVAL
    assert outcome.approval_id is not None
    env.clock.advance(60)
    other = await rt.start_run(env.spec(tenant="globex", workflow="billing", requester="bob"))
    assert (await other.call("lookup", {"order_id": "G-7"})).status is CallStatus.EXECUTED
    world = World(env, rt, run.id, outcome.approval_id, other.id)
    for name, (role, tenant, policy_roles) in TOKENS.items():
        world.secrets[name], _ = create_token(
            rt.store, name, role, tenant, env.clock.now(), policy_roles=policy_roles
        )
    return world


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[Env]:
    e = Env(tmp_path, db_url)
    yield e
    for rt in e.runtimes:
        rt.close()


@pytest.fixture
async def world(env: Env) -> World:
    return await build_world(env)


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(world.rt))
    async with httpx.AsyncClient(transport=transport, base_url="http://proctor.test") as c:
        yield c
