"""Connections to the upstream MCP servers, as an MCP client (the SDK's ``ClientSession``
over stdio or streamable HTTP).

Each connection lives in a task of its own (the SDK's transports are context managers
that must be left by the task that entered them); a connection that breaks is opened
again on the next call. A call carries proctor's idempotency key in ``_meta``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx2
from mcp import ClientSession, MCPError, StdioServerParameters, stdio_client
from mcp import types as mt
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT

from proctor.gateway.config import ServerConfig

KEY = "proctor/idempotency_key"
"""The ``_meta`` key of a call's idempotency key: the same on every retry of the call."""

log = logging.getLogger("proctor.gateway")


class UpstreamUnavailable(Exception):
    """The upstream server cannot be reached: the call was not sent."""


class UpstreamLost(TimeoutError):
    """The connection broke while a call was under way: it may or may not have taken
    effect (a timeout, to the gate: a write's outcome is unknown, a read failed)."""


_BROKEN = (
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    ConnectionError,
    httpx2.TransportError,
)


class Upstream:
    """One upstream MCP server."""

    def __init__(self, name: str, config: ServerConfig) -> None:
        self.name = name
        self.config = config
        self._session: ClientSession | None = None
        self._holder: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._connecting = asyncio.Lock()

    async def session(self) -> ClientSession:
        """The live session, connecting (again) if there is none."""
        if self._session is not None and self._holder is not None and not self._holder.done():
            return self._session
        async with self._connecting:
            if self._session is not None and self._holder is not None and not self._holder.done():
                return self._session
            await self._disconnect()
            ready: asyncio.Future[ClientSession] = asyncio.get_running_loop().create_future()
            self._stop = asyncio.Event()
            self._holder = asyncio.create_task(self._hold(ready), name=f"upstream-{self.name}")
            try:
                async with asyncio.timeout(self.config.connect_timeout_s):
                    self._session = await asyncio.shield(ready)
            except Exception as exc:
                await self._disconnect()
                raise UpstreamUnavailable(
                    f"upstream server {self.name} is unavailable: {_describe(exc)}"
                ) from exc
            return self._session

    async def _hold(self, ready: asyncio.Future[ClientSession]) -> None:
        try:
            async with AsyncExitStack() as stack:
                if self.config.command is not None:
                    command = self.config.command
                    if command in ("python", "python3"):
                        command = sys.executable  # the gateway's own Python
                    params = StdioServerParameters(
                        command=command,
                        args=list(self.config.args),
                        env={**os.environ, **self.config.env},
                        cwd=self.config.cwd,
                    )
                    read, write = await stack.enter_async_context(stdio_client(params, sys.stderr))
                else:
                    assert self.config.url is not None
                    http = await stack.enter_async_context(
                        httpx2.AsyncClient(headers=self.config.headers, timeout=30)
                    )
                    read, write = await stack.enter_async_context(
                        streamable_http_client(self.config.url, http_client=http)
                    )
                session = await stack.enter_async_context(ClientSession(read, write))
                await session.initialize()
                ready.set_result(session)
                await self._stop.wait()
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
            if not isinstance(exc, Exception | asyncio.CancelledError):
                raise
            if ready.done() and not isinstance(exc, asyncio.CancelledError):
                log.warning("upstream %s closed: %s", self.name, _describe(exc))
        finally:
            self._session = None

    async def _disconnect(self) -> None:
        holder, self._holder, self._session = self._holder, None, None
        if holder is None:
            return
        self._stop.set()
        try:
            async with asyncio.timeout(5):
                await asyncio.shield(holder)
        except (TimeoutError, Exception):
            holder.cancel()
            with contextlib.suppress(BaseException):
                await holder

    async def close(self) -> None:
        async with self._connecting:
            await self._disconnect()

    async def list_tools(self) -> list[mt.Tool]:
        session = await self.session()
        tools: list[mt.Tool] = []
        cursor: str | None = None
        while True:
            params = None if cursor is None else mt.PaginatedRequestParams(cursor=cursor)
            page = await session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                return tools

    async def call(
        self, tool: str, args: dict[str, Any], key: str | None, timeout_s: float | None = None
    ) -> mt.CallToolResult:
        """Call ``tool`` with the idempotency key in ``_meta``; ``UpstreamUnavailable`` when
        it was not sent, ``UpstreamLost`` when the connection broke while it was out."""
        session = await self.session()
        meta: Any = {KEY: key} if key else None
        try:
            result = await session.call_tool(tool, args, read_timeout_seconds=timeout_s, meta=meta)
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                raise TimeoutError(f"{self.name} did not answer {tool} in time") from exc
            if exc.code == CONNECTION_CLOSED:
                await self._broken()
                raise UpstreamLost(f"upstream server {self.name} closed during {tool}") from exc
            raise
        except _BROKEN as exc:
            await self._broken()
            raise UpstreamLost(
                f"the connection to upstream server {self.name} broke during {tool}: "
                f"{_describe(exc)}"
            ) from exc
        if not isinstance(result, mt.CallToolResult):
            raise MCPError(-32603, f"{self.name} answered {tool} with {type(result).__name__}")
        return result

    async def _broken(self) -> None:
        async with self._connecting:
            await self._disconnect()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return _describe(exc.exceptions[0])
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
