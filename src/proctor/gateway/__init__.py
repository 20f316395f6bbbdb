"""``proctor mcp serve``: a governing gateway in front of MCP servers.

The gateway is an MCP server to its clients and an MCP client of the upstream servers
``gateway.yaml`` names. Every upstream tool is offered as a proctor tool built from its
input schema and the config's declarations; every ``tools/call`` is a governed call of
the session's run. Needs the ``mcp`` extra (``pip install 'proctor[mcp]'``); nothing
else in proctor imports this package.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from proctor.gateway.check import CheckedTool, check
from proctor.gateway.config import GatewayConfig, ServerConfig, ToolConfig, load_config
from proctor.gateway.core import Gateway
from proctor.gateway.server import GatewayServer, VerifyToken
from proctor.runtime import Runtime
from proctor.settings import Settings, load_settings

__all__ = [
    "CheckedTool",
    "Gateway",
    "GatewayConfig",
    "GatewayServer",
    "ServerConfig",
    "ToolConfig",
    "VerifyToken",
    "check",
    "load_config",
    "open_gateway",
    "serve",
]


@asynccontextmanager
async def open_gateway(
    config: GatewayConfig | Path | str, settings: Settings | None = None
) -> AsyncIterator[Gateway]:
    """A started gateway: upstreams connected, tools governed, runs of a gateway that
    died before it settled; closed (sessions' runs ended, upstreams stopped) on exit."""
    loaded = config if isinstance(config, GatewayConfig) else load_config(config)
    runtime = Runtime(policy=loaded.policy, settings=settings or load_settings())
    gateway = Gateway(loaded, runtime)
    try:
        await gateway.start()
        await gateway.recover()
        yield gateway
    finally:
        await gateway.close()
        runtime.close()


async def serve(
    config: GatewayConfig | Path | str,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    verify: VerifyToken | None = None,
) -> None:
    """Serve the gateway until its stdio client leaves, or the HTTP server is stopped.
    Over HTTP, ``verify`` says which bearer tokens are live (``proctor tokens``)."""
    async with open_gateway(config) as gateway:
        server = GatewayServer(gateway)
        if transport == "stdio":
            await server.serve_stdio()
            return
        import uvicorn

        if verify is None:
            raise ValueError("serving over HTTP needs a token check (proctor.server.tokens)")
        app = server.http_app(verify, host)
        await uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
        ).serve()
