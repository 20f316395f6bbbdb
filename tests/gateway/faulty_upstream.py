"""An upstream MCP server that misbehaves on request: it crashes, stalls, or applies an
effect and then hangs (for a gateway to be killed mid-call). It counts its executions
per tool in ``counts.json`` and keeps effects by idempotency key in ``effects.json`` in
``NOTES_DIR``, as the example's server does."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "mcp"))
from upstream import executed, find_effect

server = MCPServer("faulty")
server.tool()(find_effect)


def _wait(seconds: float) -> None:
    """Sleep, but leave when the gateway that started this server is gone."""
    parent = os.getppid()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if os.getppid() != parent:
            os._exit(0)
        time.sleep(0.05)


@server.tool()
def echo(text: str, ctx: Context) -> dict[str, Any]:
    """Say it back."""
    return executed("echo", ctx, {"text": text})


@server.tool()
def crash(ctx: Context) -> dict[str, Any]:
    """The server dies during the call."""
    executed("crash", ctx, {})
    os._exit(3)


@server.tool()
def stall(ctx: Context) -> dict[str, Any]:
    """Never answers in time."""
    executed("stall", ctx, {})
    _wait(30)
    return {}


@server.tool()
def slow_write(name: str, ctx: Context) -> dict[str, Any]:
    """Applies its effect, then takes its time answering."""
    result = executed("slow_write", ctx, {"name": name})
    _wait(30)
    return result


if __name__ == "__main__":
    server.run()
