"""The MCP gateway, offline: an MCP client talks to a notes server through proctor.

    pip install 'proctor[mcp]'
    python examples/mcp/main.py

It starts ``proctor mcp serve`` over stdio in front of ``upstream.py`` (a toy notes
server written with the MCP SDK), connects with the SDK's client, lists the tools, makes
an allowed call, a denied one and one that needs approval; approves it through proctor
(as a supervisor would, on the approval page or with ``proctor approvals approve``),
makes the same call again, and prints what happened as one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp import types as mt

from proctor import Approver, Runtime, Settings

HERE = Path(__file__).parent


def status(result: mt.CallToolResult) -> str:
    structured = result.structured_content or {}
    return "executed" if not result.is_error else str(structured.get("status", "error"))


async def main() -> dict[str, Any]:
    state = Path(tempfile.mkdtemp(prefix="proctor-mcp-"))
    env = {**os.environ, "PROCTOR_HOME": str(state / "home"), "NOTES_DIR": str(state)}
    gateway = StdioServerParameters(
        command=sys.executable,
        args=["-m", "proctor", "mcp", "serve", "--config", str(HERE / "gateway.yaml")],
        env=env,
    )
    async with stdio_client(gateway) as (read, write), ClientSession(read, write) as client:
        await client.initialize()
        listed = sorted(t.name for t in (await client.list_tools()).tools)
        allowed = await client.call_tool("write_note", {"name": "todo", "body": "buy milk"})
        denied = await client.call_tool("write_note", {"name": "system/motd", "body": "hi"})
        held = await client.call_tool("delete_note", {"name": "todo"})
        ticket = (held.structured_content or {})["approval"]
        print(held.content[0].text, file=sys.stderr)  # type: ignore[union-attr]

        # A supervisor decides, in proctor: here through its API, in the same store.
        async with Runtime(policy=HERE / "policy", settings=Settings(home=state / "home")) as rt:
            rt.approvals.approve(ticket["approval_id"], Approver("sam", "supervisor"), "ok")

        done = await client.call_tool("delete_note", {"name": "todo"})
        again = await client.call_tool("delete_note", {"name": "todo"})  # answered from the log
    async with Runtime(policy=HERE / "policy", settings=Settings(home=state / "home")) as rt:
        verified = rt.verify_audit().ok
    return {
        "listed": listed,
        "allowed": status(allowed),
        "denied": status(denied),
        "pending_then_executed": status(held) == "awaiting_approval"
        and status(done) == "executed"
        and status(again) == "executed",
        "upstream_executions": json.loads((state / "counts.json").read_text()),
        "audit_verified": verified,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
