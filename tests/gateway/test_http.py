"""The gateway over streamable HTTP: proctor's bearer tokens, each confining its sessions'
runs to its tenant; ``/metrics`` per upstream server and tool."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx2
import pytest
import sqlalchemy as sa
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from proctor import Runtime, Settings
from proctor.server.tokens import Role, create_token
from proctor.store.tables import runs, steps
from tests.gateway.conftest import Setup


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@asynccontextmanager
async def client(url: str, secret: str) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {secret}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        yield session


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_tokens_confine_each_clients_runs_to_its_tenant(setup: Setup) -> None:
    async with Runtime(policy=setup.folder / "policy", settings=Settings(home=setup.home)) as rt:
        now = datetime.now(UTC)
        alice, _ = create_token(rt.store, "alice-bot", Role.VIEWER, "acme", now)
        bob, _ = create_token(rt.store, "bob-bot", Role.VIEWER, "globex", now)
        ops, _ = create_token(rt.store, "ops", Role.ADMIN, None, now)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = str(setup.config)
    args = ["-m", "proctor", "mcp", "serve", "-c", config, "--transport", "http"]
    server = subprocess.Popen([sys.executable, *args, "--port", str(port)], env=setup.env())
    try:
        async with httpx2.AsyncClient() as http:
            for _ in range(200):
                try:
                    anonymous = await http.post(f"{base}/mcp", json={})
                    break
                except httpx2.TransportError:
                    await asyncio.sleep(0.05)
            assert anonymous.status_code == 401

            async with client(f"{base}/mcp", alice) as a, client(f"{base}/mcp", bob) as b:
                assert not (await a.call_tool("write_note", {"name": "a", "body": "1"})).is_error
                assert not (await b.call_tool("write_note", {"name": "b", "body": "2"})).is_error
                with rt.store.read() as conn:
                    rows = conn.execute(sa.select(runs.c.id, runs.c.tenant, runs.c.session)).all()
                by_tenant = {r.tenant: r for r in rows}
                assert sorted(by_tenant) == ["acme", "globex"]
                # Bob's token with Alice's session id does not reach Alice's run.
                hijack = await http.post(
                    f"{base}/mcp",
                    headers={
                        "Authorization": f"Bearer {bob}",
                        "mcp-session-id": by_tenant["acme"].session,
                        "mcp-protocol-version": "2025-11-25",
                        "accept": "application/json, text/event-stream",
                    },
                    json={
                        "jsonrpc": "2.0",
                        "id": 99,
                        "method": "tools/call",
                        "params": {"name": "write_note", "arguments": {"name": "x", "body": "3"}},
                    },
                )
                assert "belongs to another token" in hijack.text

            metrics = await http.get(f"{base}/metrics", headers={"Authorization": f"Bearer {ops}"})
            line = 'proctor_mcp_calls_total{server="notes",tool="write_note",status="executed"} 2'
            assert line in metrics.text
            tenant_only = await http.get(
                f"{base}/metrics", headers={"Authorization": f"Bearer {alice}"}
            )
            assert tenant_only.status_code == 403
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=20)
    async with Runtime(policy=setup.folder / "policy", settings=Settings(home=setup.home)) as rt:
        with rt.store.read() as conn:
            made = conn.execute(sa.select(steps.c.run_id, steps.c.args)).all()
            ended = conn.execute(sa.select(runs.c.tenant, runs.c.state)).all()
    assert sorted((by_tenant_of(r.run_id, by_tenant), r.args["name"]) for r in made) == [
        ("acme", "a"),
        ("globex", "b"),
    ]
    assert setup.counts() == {"write_note": 2}
    assert sorted(ended) == [("acme", "completed"), ("globex", "completed")]


def by_tenant_of(run_id: str, by_tenant: dict[str, sa.Row[tuple[str, str, str]]]) -> str:
    return next(t for t, r in by_tenant.items() if r.id == run_id)


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_an_upstream_over_streamable_http_is_governed_like_one_over_stdio(
    setup: Setup,
) -> None:
    from mcp import StdioServerParameters, stdio_client

    port = free_port()
    notes = setup.config_data["servers"]["notes"]
    upstream_args = [*notes.pop("args"), "--port", str(port)]
    del notes["command"]
    notes["url"] = f"http://127.0.0.1:{port}/mcp"
    upstream = subprocess.Popen([sys.executable, *upstream_args], env=setup.env())
    try:
        async with httpx2.AsyncClient() as http:
            for _ in range(200):
                try:
                    await http.get(f"http://127.0.0.1:{port}/mcp")
                    break
                except httpx2.TransportError:
                    await asyncio.sleep(0.05)
        gateway = StdioServerParameters(
            command=sys.executable,
            args=["-m", "proctor", "mcp", "serve", "--config", str(setup.config)],
            env=setup.env(),
        )
        async with stdio_client(gateway) as streams, ClientSession(*streams) as session:
            await session.initialize()
            listed = sorted(t.name for t in (await session.list_tools()).tools)
            assert listed == ["delete_note", "read_note", "write_note"]
            ok = await session.call_tool("write_note", {"name": "todo", "body": "milk"})
            assert not ok.is_error
            denied = await session.call_tool("write_note", {"name": "system/x", "body": "1"})
            assert denied.is_error
            assert "denied by policy" in "".join(getattr(c, "text", "") for c in denied.content)
            malformed = await session.call_tool("write_note", {"name": "todo"})
            assert malformed.is_error
        assert setup.counts() == {"write_note": 1}
        effects = json.loads((setup.notes / "effects.json").read_text())
        assert [e["tool"] for e in effects.values()] == ["write_note"]  # keyed upstream
    finally:
        upstream.terminate()
        upstream.wait(timeout=20)
