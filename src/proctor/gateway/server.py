"""The gateway as an MCP server (the SDK's low-level ``Server``), over stdio or
streamable HTTP with proctor's bearer tokens."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

from mcp import types as mt
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.session import ServerSession

from proctor.gateway.core import Gateway, Session, session_id
from proctor.store import Store

log = logging.getLogger("proctor.gateway")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Token(Protocol):
    """A bearer token as ``proctor tokens`` keeps it (``proctor.server.tokens.ApiToken``)."""

    @property
    def name(self) -> str: ...
    @property
    def tenant(self) -> str | None: ...


VerifyToken = Callable[[Store, str], Token | None]
"""The live token with a secret, or None (``proctor.server.tokens.verify_token``)."""

_URL_ELICITATION = mt.ClientCapabilities(
    elicitation=mt.ElicitationCapability(url=mt.UrlElicitationCapability())
)


class GatewayServer:
    """The MCP server the gateway's clients connect to."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._stdio_session: str | None = None
        """Over stdio, the one connection's session (the SDK builds a ``ServerSession``
        per request in some protocol eras, so it does not name the connection)."""
        self._background: set[asyncio.Task[Any]] = set()
        self.server: Server[Any] = Server(
            gateway.config.name,
            version="1",
            instructions="Tools of the upstream servers, each call governed by proctor: a call "
            "may be denied, or wait for a person's approval; repeat it once approved.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    # -- who is calling ------------------------------------------------------------------

    def _session(self, ctx: ServerRequestContext[Any, Any]) -> Session:
        config = self.gateway.config
        request = ctx.request
        token: Token | None = None
        header_session: str | None = None
        header_requester: str | None = None
        if request is not None:  # streamable HTTP
            token = getattr(request.state, "proctor_token", None)
            header_session = request.headers.get("mcp-session-id")
            header_requester = request.headers.get(config.requester_header)
        params = ctx.session.client_params
        client = params.client_info.name if params is not None else "mcp-client"
        requester = config.requester or header_requester or client
        tenant = config.tenant if token is None or token.tenant is None else token.tenant
        role = config.roles.get(token.name, config.role) if token is not None else config.role
        if config.session == "client":
            key = f"{client}:{requester}" + (f":{token.name}" if token else "")
        else:
            # Stateless HTTP has no session: each request is then a run of its own.
            key = header_session or self._stdio_session or session_id()
        spec = self.gateway.spec(tenant, requester, role)
        return self.gateway.session(key, spec, None if token is None else token.name)

    # -- handlers ------------------------------------------------------------------------

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: mt.PaginatedRequestParams | None
    ) -> mt.ListToolsResult:
        session = self._session(ctx)
        return mt.ListToolsResult(tools=self.gateway.listing(session.spec.role))

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: mt.CallToolRequestParams
    ) -> mt.CallToolResult:
        try:
            session = self._session(ctx)
        except PermissionError as exc:
            return mt.CallToolResult(
                content=[mt.TextContent(type="text", text=str(exc))], is_error=True
            )
        result, verdict = await self.gateway.call(session, params.name, params.arguments)
        ticket = verdict.approval if verdict is not None else None
        if ticket is not None and verdict is not None and not verdict.replayed:
            url = self.gateway.approval_url(ticket.approval_id)
            if url and ctx.session.check_client_capability(_URL_ELICITATION):
                self._elicit(ctx.session, ticket.tool, ticket.approval_id, url)
        return result

    def _elicit(self, session: ServerSession, tool: str, approval_id: str, url: str) -> None:
        """Show the approval natively where the client supports URL elicitation; nothing
        waits on the answer."""

        async def ask() -> None:
            try:
                await session.elicit_url(
                    f"{tool} waits for a person's approval ({approval_id}); it can be decided "
                    "here. Repeat the call once it is decided.",
                    url,
                    approval_id,
                )
            except Exception as exc:
                log.info("URL elicitation of %s not shown: %s", approval_id, exc)

        task = asyncio.create_task(ask())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- transports ----------------------------------------------------------------------

    async def serve_stdio(self) -> None:
        """Serve one client on stdin/stdout; its run ends when it disconnects."""
        from mcp.server.stdio import stdio_server

        self._stdio_session = session_id()
        try:
            async with stdio_server() as (read, write):
                await self.server.run(read, write, self.server.create_initialization_options())
        finally:
            for key in list(self.gateway.sessions):
                if self.gateway.config.session == "client":
                    await self.gateway.detach(key)
                else:
                    await self.gateway.end(key)

    def http_app(self, verify: VerifyToken, host: str = "127.0.0.1") -> ASGIApp:
        """The streamable-HTTP app at ``/mcp``, behind proctor's bearer tokens, with
        ``/metrics`` for a token that sees every tenant."""
        from starlette.requests import Request
        from starlette.responses import PlainTextResponse, Response
        from starlette.routing import Route

        async def metrics(request: Request) -> Response:
            token = request.scope.get("state", {}).get("proctor_token")
            if token is None or token.tenant is not None:
                return PlainTextResponse("metrics need a token that sees every tenant", 403)
            return PlainTextResponse(self.gateway.metrics.text())

        app = self.server.streamable_http_app(
            host=host, custom_starlette_routes=[Route("/metrics", metrics)]
        )
        return _Authenticated(app, self.gateway, verify)


class _Authenticated:
    """Every HTTP request carries a live proctor token (``proctor tokens create``); a
    session closed by the client (``DELETE``) ends its run."""

    def __init__(self, app: ASGIApp, gateway: Gateway, verify: VerifyToken) -> None:
        self.app = app
        self.gateway = gateway
        self.verify = verify

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        auth = headers.get("authorization", "")
        secret = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        token = self.verify(self.gateway.runtime.store, secret) if secret else None
        if token is None:
            body = b'{"error": "send a live proctor token: Authorization: Bearer pct_..."}'
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b"Bearer"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["proctor_token"] = token
        await self.app(scope, receive, send)
        closed = headers.get("mcp-session-id")
        if scope["method"] == "DELETE" and closed:
            held = self.gateway.sessions.get(closed)
            if held is not None and held.token == token.name:
                await self.gateway.end(closed)
