"""What the MCP gateway adds to a tool call: the same upstream called directly and
through ``proctor mcp serve``, both over stdio with the SDK's client (needs the ``mcp``
extra)."""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters, stdio_client

UPSTREAM = '''
from mcp.server.mcpserver import MCPServer

server = MCPServer("echo")


@server.tool()
def echo(text: str) -> dict:
    """Say it back."""
    return {"text": text}


server.run()
'''

POLICY = 'permit (principal, action == Action::"echo", resource);\n'

CONFIG = """
policy: bundle
agent: bench-agent
role: agent
tenant: bench
workflow: bench
servers:
  echo:
    command: python
    args: [upstream.py]
    tools:
      echo: {effect: write, trust: trusted}
"""


async def _time_calls(params: StdioServerParameters, calls: int) -> list[float]:
    async with stdio_client(params) as streams, ClientSession(*streams) as client:
        await client.initialize()
        for i in range(20):  # warm up
            await client.call_tool("echo", {"text": f"warm {i}"})
        took = []
        for i in range(calls):
            began = time.perf_counter()
            result = await client.call_tool("echo", {"text": f"call {i}"})
            took.append(time.perf_counter() - began)
            if result.is_error:
                raise RuntimeError(f"call {i} failed: {result.content}")
        return took


def _figures(took: list[float]) -> dict[str, float]:
    ordered = sorted(took)
    return {
        "median_us": round(statistics.median(ordered) * 1e6, 1),
        "p99_us": round(ordered[int(len(ordered) * 0.99) - 1] * 1e6, 1),
    }


def measure(calls: int = 1000) -> dict[str, Any]:
    """Median and p99 of ``calls`` tool calls, direct and through the gateway, and the
    median latency the gateway adds."""
    folder = Path(tempfile.mkdtemp(prefix="proctor-bench-mcp-"))
    (folder / "upstream.py").write_text(UPSTREAM)
    (folder / "bundle").mkdir()
    (folder / "bundle" / "policy.cedar").write_text(POLICY)
    (folder / "bundle" / "proctor.yaml").write_text("label: bench-mcp\n")
    (folder / "gateway.yaml").write_text(CONFIG)
    env = {**os.environ, "PROCTOR_HOME": str(folder / "home")}
    direct = StdioServerParameters(command=sys.executable, args=[str(folder / "upstream.py")])
    governed = StdioServerParameters(
        command=sys.executable,
        args=["-m", "proctor", "mcp", "serve", "--config", str(folder / "gateway.yaml")],
        env=env,
    )
    plain = _figures(asyncio.run(_time_calls(direct, calls)))
    through = _figures(asyncio.run(_time_calls(governed, calls)))
    return {
        "calls": calls,
        "direct": plain,
        "through_gateway": through,
        "added_median_us": round(through["median_us"] - plain["median_us"], 1),
    }
