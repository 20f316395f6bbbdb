"""An MCP client (the SDK's) talks to the gateway over stdio, as a desktop client does:
what the policy allows runs once upstream, the rest never reaches it."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp import types as mt

from proctor import Approver, Runtime, Settings
from proctor.runs.views import load_run
from proctor.store.tables import runs
from tests.gateway.conftest import Setup


def text(result: mt.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, mt.TextContent))


def ticket(result: mt.CallToolResult) -> dict[str, Any]:
    assert result.is_error
    assert result.structured_content is not None
    assert result.structured_content["status"] == "awaiting_approval"
    approval: dict[str, Any] = result.structured_content["approval"]
    return approval


def gateway(setup: Setup) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "proctor", "mcp", "serve", "--config", str(setup.config)],
        env=setup.env(),
    )


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_a_conversation_through_the_gateway(setup: Setup) -> None:
    shown: list[mt.ElicitRequestParams] = []

    async def elicitation(context: Any, params: mt.ElicitRequestParams) -> mt.ElicitResult:
        shown.append(params)  # a client able to show a URL shows the approval page
        return mt.ElicitResult(action="accept")

    async with (
        stdio_client(gateway(setup)) as streams,
        ClientSession(*streams, elicitation_callback=elicitation) as client,
    ):
        await client.initialize()
        listed = {t.name: t for t in (await client.list_tools()).tools}
        # purge_notes: no policy ever allows it, so the model is not offered it.
        assert sorted(listed) == ["delete_note", "read_note", "write_note"]
        assert listed["write_note"].input_schema["required"] == ["name", "body"]

        ok = await client.call_tool("write_note", {"name": "todo", "body": "milk"})
        assert not ok.is_error
        assert ok.structured_content == {"name": "todo", "written": 4}

        malformed = await client.call_tool("write_note", {"name": "todo", "bdy": "milk"})
        assert malformed.is_error
        assert "body" in text(malformed)

        denied = await client.call_tool("write_note", {"name": "system/motd", "body": "x"})
        assert denied.is_error
        assert "denied by policy" in text(denied)
        assert "system-notes-are-read-only" in text(denied)
        assert setup.counts() == {"write_note": 1}  # neither reached the upstream

        held = ticket(await client.call_tool("delete_note", {"name": "todo"}))
        assert held["roles"] == ["supervisor"]
        assert held["url"].endswith(held["approval_id"])
        for _ in range(100):
            if shown:
                break
            await asyncio.sleep(0.02)
        (asked,) = shown
        assert isinstance(asked, mt.ElicitRequestURLParams)
        assert asked.url == held["url"]
        # While it waits, the session's other calls wait too, and nothing runs.
        other = await client.call_tool("read_note", {"name": "todo"})
        assert ticket(other)["approval_id"] == held["approval_id"]
        assert ticket(await client.call_tool("delete_note", {"name": "todo"})) == held

        settings = Settings(home=setup.home)
        async with Runtime(policy=setup.folder / "policy", settings=settings) as rt:
            rt.approvals.approve(held["approval_id"], Approver("sam", "supervisor"), "ok")
        for _ in range(2):
            done = await client.call_tool("delete_note", {"name": "todo"})
            assert not done.is_error, text(done)
            assert done.structured_content == {"name": "todo", "deleted": True}
        assert setup.counts() == {"write_note": 1, "delete_note": 1}

        # A read made twice is read twice: only calls that went to approval are answered
        # from the log.
        for _ in range(2):
            assert not (await client.call_tool("read_note", {"name": "todo"})).is_error
        assert setup.counts()["read_note"] == 2

        refused = ticket(await client.call_tool("delete_note", {"name": "other"}))
        async with Runtime(policy=setup.folder / "policy", settings=settings) as rt:
            rt.approvals.deny(refused["approval_id"], Approver("sam", "supervisor"), "keep it")
        again = await client.call_tool("delete_note", {"name": "other"})
        assert again.is_error
        assert text(again) == "Not allowed: sam refused delete_note (keep it); it did not run."
        assert setup.counts()["delete_note"] == 1

    async with Runtime(policy=setup.folder / "policy", settings=settings) as rt:
        assert rt.verify_audit().ok
        effects = (setup.notes / "effects.json").read_text()
        with rt.store.read() as conn:
            (run_id,) = conn.execute(runs.select().with_only_columns(runs.c.id)).scalars()
            view = load_run(conn, run_id)
    # One MCP session, one run, ended when the client left; each step carried its key.
    assert view.state.value == "completed"
    assert [s.tool for s in view.steps if s.status.value == "succeeded"] == [
        "write_note",
        "delete_note",
        "read_note",
        "read_note",
    ]
    for step in view.steps:
        if step.tool != "read_note" and step.status.value == "succeeded":
            assert step.idempotency_key in effects
