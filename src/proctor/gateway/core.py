"""The gateway's core: upstream tools as governed proctor tools, MCP sessions as runs,
and each ``tools/call`` as a governed call whose verdict becomes an MCP tool result.

A call is keyed for the Governor by a digest of its tool and canonical arguments
(``call_key``): the JSON-RPC request id changes when a client makes the same call again,
the digest does not. Among a run's calls with that digest, one that went to approval
(awaiting, approved or refused) is the one a repeat answers from; any other repeat is a
new call. So "the same call made again after the approval is decided" returns the
recorded outcome, or runs the approved call exactly once, and a read made twice is read
twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from mcp import types as mt

from proctor.gateway.config import GatewayConfig
from proctor.gateway.upstream import Upstream
from proctor.ids import new_id
from proctor.integrations import Governor, Verdict
from proctor.jsonvalue import digest
from proctor.policy import CellKind, permission_matrix
from proctor.runs import journal
from proctor.runs.model import RunSpec
from proctor.runtime import Runtime
from proctor.states import RunState
from proctor.store.tables import steps
from proctor.tool_types import Reconciliation
from proctor.tools import Tool, ToolContext

log = logging.getLogger("proctor.gateway")


@dataclass
class Exposed:
    """An upstream tool as the gateway offers it."""

    name: str
    server: str
    upstream_name: str
    listing: mt.Tool
    tool: Tool

    @property
    def structured(self) -> bool:
        return self.listing.output_schema is not None


@dataclass
class Session:
    """One MCP session the gateway serves: one run."""

    key: str
    spec: RunSpec
    token: str | None = None
    last_seen: float = field(default_factory=time.monotonic)
    run_id: str | None = None
    calls: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    """The run's calls by digest of tool and arguments: (call id, went to approval)."""


class Metrics:
    """Calls per upstream server, tool and outcome, for ``/metrics``."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, str], int] = {}
        self.seconds: dict[tuple[str, str], float] = {}

    def count(self, server: str, tool: str, status: str, seconds: float) -> None:
        key = (server, tool, status)
        self.calls[key] = self.calls.get(key, 0) + 1
        self.seconds[(server, tool)] = self.seconds.get((server, tool), 0.0) + seconds

    def text(self) -> str:
        """The Prometheus text format."""
        lines = [
            "# HELP proctor_mcp_calls_total Governed tools/call requests, by outcome.",
            "# TYPE proctor_mcp_calls_total counter",
        ]
        for (server, tool, status), n in sorted(self.calls.items()):
            labels = f'server="{server}",tool="{tool}",status="{status}"'
            lines.append(f"proctor_mcp_calls_total{{{labels}}} {n}")
        lines += [
            "# HELP proctor_mcp_call_seconds_total Time spent in governed calls.",
            "# TYPE proctor_mcp_call_seconds_total counter",
        ]
        for (server, tool), s in sorted(self.seconds.items()):
            lines.append(f'proctor_mcp_call_seconds_total{{server="{server}",tool="{tool}"}} {s}')
        return "\n".join(lines) + "\n"


class Gateway:
    """Governs the upstream servers' tools for the gateway's MCP clients."""

    def __init__(self, config: GatewayConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime
        self._governors: dict[str, Governor] = {}
        self.upstreams = {name: Upstream(name, s) for name, s in config.servers.items()}
        self.exposed: dict[str, Exposed] = {}
        self.undeclared: list[tuple[str, str]] = []
        self.sessions: dict[str, Session] = {}
        self.metrics = Metrics()
        self._hidden: dict[str, frozenset[str]] = {}
        self._sweeper: asyncio.Task[None] | None = None

    def governor(self, tenant: str) -> Governor:
        """The Governor of ``tenant``'s sessions (it finds a session's run by tenant)."""
        held = self._governors.get(tenant)
        if held is None:
            held = self._governors[tenant] = Governor(self.runtime, self.spec(tenant, "gateway"))
        return held

    def spec(self, tenant: str, requester: str, role: str | None = None, **extra: Any) -> RunSpec:
        return RunSpec(
            agent=self.config.agent,
            role=role or self.config.role,
            tenant=tenant,
            workflow=self.config.workflow,
            requester=requester,
            **extra,
        )

    # -- tools ---------------------------------------------------------------------------

    async def start(self, *, sweep: bool = True) -> None:
        """Connect to every upstream and govern its tools; then (``sweep``) end idle
        sessions' runs and settle those of a gateway that died."""
        names = list(self.upstreams)
        found = await asyncio.gather(*(self.upstreams[n].list_tools() for n in names))
        listed = dict(zip(names, found, strict=True))
        counts: dict[str, int] = {}
        for tools in listed.values():
            for t in tools:
                counts[t.name] = counts.get(t.name, 0) + 1
        for name, tools in listed.items():
            config = self.config.servers[name]
            declarations = config.declarations()
            for t in tools:
                if t.name == config.reconcile:
                    continue
                try:
                    declaration = declarations.of(t.name)
                except Exception:
                    self.undeclared.append((name, t.name))
                    log.warning(
                        "upstream %s: tool %s has no declaration; not offered", name, t.name
                    )
                    continue
                prefix = config.prefix or name
                clash = counts[t.name] > 1 or config.always_prefix
                exposed_name = f"{prefix}_{t.name}" if clash else t.name
                if exposed_name in self.exposed:
                    raise ValueError(f"two upstream tools are offered as {exposed_name}")
                tool = declaration.schema_tool(
                    exposed_name, t.description or "", t.input_schema, self._execute(name, t.name)
                )
                if config.reconcile:
                    tool.reconcile_fn = self._reconcile(name, config.reconcile)
                self.governor(self.config.tenant).add(tool)
                self.exposed[exposed_name] = Exposed(exposed_name, name, t.name, t, tool)
        if sweep and self._sweeper is None:
            self._sweeper = asyncio.create_task(self._sweep_forever(), name="gateway-sweeper")

    def _execute(self, server: str, name: str) -> Any:
        upstream = self.upstreams[server]

        async def execute(args: dict[str, Any], ctx: ToolContext) -> Any:
            timeout = self.runtime.tools.get(self._exposed_of(server, name)).timeout_s
            result = await upstream.call(name, args, ctx.idempotency_key, timeout)
            if result.is_error:
                raise RuntimeError(f"{server} answered: {_text(result) or 'an error'}")
            return _value(result)

        return execute

    def _exposed_of(self, server: str, name: str) -> str:
        return next(
            e.name for e in self.exposed.values() if (e.server, e.upstream_name) == (server, name)
        )

    def _reconcile(self, server: str, tool: str) -> Any:
        upstream = self.upstreams[server]

        async def reconcile(args: Any, ctx: ToolContext) -> Reconciliation | None:
            result = await upstream.call(tool, {"idempotency_key": ctx.idempotency_key}, None)
            answer = result.structured_content
            if result.is_error or not isinstance(answer, Mapping) or "happened" not in answer:
                return None
            return Reconciliation(bool(answer["happened"]), answer.get("result"))

        return reconcile

    def listing(self, role: str) -> list[mt.Tool]:
        """``tools/list`` for a session of ``role``: the policy's never-allowed tools left out
        (``hide_denied``)."""
        hidden = self._hidden.get(role)
        if hidden is None:
            hidden = frozenset()
            if self.config.hide_denied and self.exposed:
                effects = {n: e.tool.effect.value for n, e in self.exposed.items()}
                matrix = permission_matrix(self.runtime.policy, tools=effects, roles=[role])
                hidden = frozenset(
                    n for n in effects if matrix.cells[(role, n)].kind is CellKind.DENIED
                )
            self._hidden[role] = hidden
        return [
            mt.Tool(
                name=e.name,
                title=e.listing.title,
                description=e.listing.description,
                input_schema=e.listing.input_schema,
                annotations=e.listing.annotations,
            )
            for e in self.exposed.values()
            if e.name not in hidden
        ]

    # -- sessions ------------------------------------------------------------------------

    def session(self, key: str, spec: RunSpec, token: str | None = None) -> Session:
        held = self.sessions.get(key)
        if held is None:
            held = self.sessions[key] = Session(
                key, spec.model_copy(update={"session": key}), token
            )
        if held.token != token:
            raise PermissionError("this MCP session belongs to another token")
        held.last_seen = time.monotonic()
        return held

    async def end(self, key: str, detail: str = "the MCP session closed") -> str | None:
        session = self.sessions.pop(key, None)
        if session is None:
            return None
        return await self.governor(session.spec.tenant).end(key, "completed", detail=detail)

    async def detach(self, key: str) -> None:
        """The client left, but its session (``session: client``) goes on when it comes
        back: the run is let go, for whichever gateway process serves it next."""
        session = self.sessions.pop(key, None)
        if session is None:
            return
        await self.governor(session.spec.tenant).release(key)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for key in list(self.sessions):
            await self.end(key, "the gateway stopped")
        for upstream in self.upstreams.values():
            await upstream.close()

    async def _sweep_forever(self) -> None:
        period = min(5.0, self.config.idle_timeout_s / 2)
        while True:
            await asyncio.sleep(period)
            try:
                await self.sweep()
            except Exception:
                log.exception("gateway sweep failed")

    async def sweep(self) -> None:
        """End idle sessions' runs; settle the runs of a gateway that died mid-call."""
        now = time.monotonic()
        for key, session in list(self.sessions.items()):
            if now - session.last_seen > self.config.idle_timeout_s:
                await self.end(key, f"the MCP session was idle {self.config.idle_timeout_s:g}s")
        await self.recover()

    async def recover(self) -> list[str]:
        """Runs of this gateway's workflow whose gateway died: each is taken over, which
        settles a call that was out (reconciled, or handed off as outcome_unknown; never
        sent again), and ended unless a call of it waits for approval."""
        settled = []
        for run_id in self.runtime.recover_expired().runs:
            with self.runtime.store.read() as conn:
                record = journal.load_run(conn, run_id)
            if record.spec.workflow != self.config.workflow or record.spec.session in self.sessions:
                continue
            run = await self.runtime.resume(run_id)
            if run.state is RunState.AWAITING_APPROVAL:
                await run.release()
            elif not run.state.terminal:
                await run.complete("the gateway stopped during the MCP session")
            settled.append(run_id)
        return settled

    # -- calls ---------------------------------------------------------------------------

    def call_key(self, session: Session, tool: str, args: Mapping[str, Any]) -> str:
        """The Governor's call id for this call (see the module's docstring)."""
        base = "mcp:" + digest({"tool": tool, "args": dict(args)})[:40]
        run_id = self.governor(session.spec.tenant).run_id(session.key)
        if run_id != session.run_id:
            session.run_id, session.calls = run_id, self._calls_of(run_id)
        made = session.calls.get(base, [])
        held = [call_id for call_id, approval in made if approval]
        return held[-1] if held else f"{base}.{len(made)}"

    def _calls_of(self, run_id: str | None) -> dict[str, list[tuple[str, bool]]]:
        """The calls a run made, by digest: their ids, and whether each went to approval."""
        calls: dict[str, list[tuple[str, bool]]] = {}
        if run_id is None:
            return calls
        query = (
            sa.select(steps.c.call_id, steps.c.approval_id)
            .where(steps.c.run_id == run_id, steps.c.call_id.like("mcp:%"))
            .order_by(steps.c.idx)
        )
        with self.runtime.store.read() as conn:
            for call_id, approval_id in conn.execute(query):
                base = call_id.rpartition(".")[0]
                calls.setdefault(base, []).append((call_id, approval_id is not None))
        return calls

    def _made(self, session: Session, call_id: str, verdict: Verdict) -> None:
        """Note a call the run journaled (one that was validated and proposed)."""
        if verdict.outcome is None:
            return
        if verdict.outcome.run_id != session.run_id:
            session.run_id, session.calls = (
                verdict.outcome.run_id,
                self._calls_of(verdict.outcome.run_id),
            )
            return
        base = call_id.rpartition(".")[0]
        made = session.calls.setdefault(base, [])
        went = verdict.outcome.approval_id is not None
        if all(known != call_id for known, _ in made):
            made.append((call_id, went))
        else:
            made[:] = [(c, a or (c == call_id and went)) for c, a in made]

    async def call(
        self, session: Session, name: str, args: Mapping[str, Any] | None
    ) -> tuple[mt.CallToolResult, Verdict | None]:
        """Govern one ``tools/call``; the MCP result and the verdict behind it."""
        session.last_seen = time.monotonic()
        exposed = self.exposed.get(name)
        if exposed is None:
            return _error(f"Unknown tool {name!r}: tools/list names the tools offered."), None
        began = time.monotonic()
        arguments = dict(args or {})
        async with self._lock(session.key):
            call_id = self.call_key(session, name, arguments)
            verdict = await self.governor(session.spec.tenant).call(
                session.key, name, arguments, call_id=call_id, spec=session.spec
            )
            self._made(session, call_id, verdict)
        self.metrics.count(exposed.server, name, verdict.status, time.monotonic() - began)
        return self.result(exposed, verdict), verdict

    def _lock(self, key: str) -> asyncio.Lock:
        # The call key reads the journal: compute it and propose under one lock.
        locks: dict[str, asyncio.Lock] = self.__dict__.setdefault("_locks", {})
        return locks.setdefault(key, asyncio.Lock())

    def result(self, exposed: Exposed, verdict: Verdict) -> mt.CallToolResult:
        if verdict.executed:
            value = verdict.result
            if exposed.structured and isinstance(value, dict):
                text = json.dumps(value, indent=2, default=str)
                return mt.CallToolResult(
                    content=[mt.TextContent(type="text", text=text)], structured_content=value
                )
            if isinstance(value, dict) and set(value) == {"text"}:
                text = str(value["text"])
            else:
                text = json.dumps(value, indent=2, default=str)
            return mt.CallToolResult(content=[mt.TextContent(type="text", text=text)])
        status: dict[str, Any] = {"status": verdict.status}
        message = verdict.for_model()
        if verdict.approval is not None:
            ticket = verdict.approval.to_json()
            url = self.approval_url(verdict.approval.approval_id)
            if url:
                ticket["url"] = url
            status["approval"] = ticket
            where = f" at {url}" if url else ""
            message += (
                f" A person with the role {' or '.join(verdict.approval.roles)} decides it"
                f"{where} ({verdict.approval.how}). Make the same call again, with the same "
                "arguments, once it is decided: it then runs once, or says it was refused."
            )
        return _error(message, status)

    def approval_url(self, approval_id: str) -> str | None:
        template = self.config.approval_url
        return None if template is None else template.replace("{approval_id}", approval_id)


def _error(message: str, structured: dict[str, Any] | None = None) -> mt.CallToolResult:
    return mt.CallToolResult(
        content=[mt.TextContent(type="text", text=message)],
        structured_content=structured,
        is_error=True,
    )


def _text(result: mt.CallToolResult) -> str:
    return "\n".join(c.text for c in result.content if isinstance(c, mt.TextContent))


def _value(result: mt.CallToolResult) -> Any:
    """The upstream's result as proctor records it: its structured content, or its text."""
    if isinstance(result.structured_content, dict):
        return result.structured_content
    value: dict[str, Any] = {"text": _text(result)}
    others = [
        c.model_dump(mode="json") for c in result.content if not isinstance(c, mt.TextContent)
    ]
    if others:
        value["content"] = others
    return value


def session_id() -> str:
    return new_id("mcps")
