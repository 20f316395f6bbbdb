"""Tools: Python functions that act on real systems, declared so they can be governed.

A function becomes a tool by decoration. Its signature gives the typed
arguments (a strict pydantic model); the decorator declares what the tool does
(effect class), what it touches (resource), which scopes its credential gets,
whether its output can be trusted, and which fields are sensitive.

    @tool(effect=Effect.IRREVERSIBLE, resource=lambda a: ResourceRef("Order", a.order_id))
    async def issue_refund(order_id: str, amount: Decimal, ctx: ToolContext) -> dict: ...
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from proctor.arguments import (
    args_model,
    field_of,
    invalid_action,
    numbers_beyond_policy,
    problems,
)
from proctor.errors import InvalidAction, ToolDefinitionError, TransientToolError
from proctor.jsonvalue import canonical_json, digest, to_plain
from proctor.policy import ResourceRef


class Effect(StrEnum):
    """What running the tool does to the world."""

    READ = "read"
    WRITE = "write"
    DESTRUCTIVE = "destructive"
    """It deletes, revokes, cancels or removes something."""
    IRREVERSIBLE = "irreversible"


class Trust(StrEnum):
    """Whose words a tool's result carries.

    ``TRUSTED``: records of a system the deployment trusts (ids, statuses, amounts);
    its values make an argument ``known``. ``UNTRUSTED``: outside content (an email, a
    web page, a file, a chat message) that may carry injected instructions. A tool whose
    records hold outside content in some fields names those fields with ``untrusted=``.
    """

    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"


@dataclass(frozen=True)
class Credential:
    """What a tool may use while it runs: a token limited to its declared scopes."""

    scopes: frozenset[str]
    token: str | None = None


@dataclass(frozen=True)
class ToolContext:
    """Handed to a tool that declares a ``ToolContext`` parameter."""

    run_id: str
    step: int
    tenant: str
    idempotency_key: str
    """The same on every retry and every resume of this step: pass it to the system you call."""
    credential: Credential
    attempt: int = 1


@dataclass(frozen=True)
class Reconciliation:
    """A tool's answer, after a crash, to: did the effect with this idempotency key happen?"""

    happened: bool
    result: Any = None


_RESERVED_NAMES = frozenset(e.value for e in Effect)


class ToolStillRunning(TimeoutError):
    """A synchronous tool passed its timeout; its thread goes on and may still take effect."""


@dataclass(frozen=True)
class RunView:
    """What a resource hook may know of the run deciding a call: read-only."""

    run_id: str
    tenant: str
    workflow: str
    agent: str
    requester: str
    facts: Mapping[str, Any]
    """Facts tools established earlier in the run (``facts=`` on a tool)."""


ResourceFn = (
    Callable[[BaseModel], ResourceRef | Awaitable[ResourceRef]]
    | Callable[[BaseModel, RunView], ResourceRef | Awaitable[ResourceRef]]
)
FactsFn = Callable[[Any], Mapping[str, Any]]
ReconcileFn = Callable[[BaseModel, ToolContext], Reconciliation | Awaitable[Reconciliation]]


@dataclass(eq=False)
class Tool:
    """A governed tool: the function, its typed arguments and its declarations."""

    name: str
    description: str
    fn: Callable[..., Any]
    effect: Effect
    args_model: type[BaseModel]
    resource: ResourceFn | None = None
    """What a call touches, for policies: from its arguments, and the run if it takes it."""
    facts: FactsFn | None = None
    """Facts a successful call establishes from its result (``verified_customer``...),
    which later decisions see as ``context.run.facts``."""
    scopes: frozenset[str] = frozenset()
    trust: Trust | None = None
    """``None``: not declared; read as records, and ``proctor policy check`` warns."""
    untrusted: tuple[str, ...] = ()
    """Paths of the result's fields that carry outside content (``body``,
    ``messages[].text``); the rest of the result is records."""
    identifiers: tuple[str, ...] = ()
    """Paths of the record fields that identify something (an id, an address on file):
    a value equal to one is ``known`` even where outside content repeats it. Fields
    named ``id`` or ending in ``_id`` are identifiers too."""
    sinks: frozenset[str] = frozenset()
    """Arguments that say who or where the effect goes (recipients, payees, URLs)."""
    targets: frozenset[str] = frozenset()
    """Arguments that say what the effect destroys or changes (a file id, an email id)."""
    sensitive: frozenset[str] = frozenset()
    """Argument and result fields that are masked before anything is stored."""
    idempotent: bool = False
    timeout_s: float = 30.0
    max_retries: int = 2
    reconcile_fn: ReconcileFn | None = None
    context_param: str | None = None
    is_async: bool = field(init=False)
    resource_takes_run: bool = field(init=False)
    """Whether the resource hook takes the run as its second parameter."""

    def __post_init__(self) -> None:
        self.is_async = inspect.iscoroutinefunction(self.fn)
        # Read once here: inspecting a signature on every decision costs as much as it.
        self.resource_takes_run = (
            self.resource is not None and len(inspect.signature(self.resource).parameters) >= 2
        )

    @property
    def reads_outside_content(self) -> bool:
        """Whether some of its result is outside content that may carry injections."""
        return self.trust is Trust.UNTRUSTED or bool(self.untrusted)

    def reconcile(self, fn: ReconcileFn) -> ReconcileFn:
        """Decorator: the hook that asks the system of record whether an effect happened."""
        self.reconcile_fn = fn
        return fn

    # -- validation ------------------------------------------------------------------

    def validate(self, args: Mapping[str, Any]) -> BaseModel:
        """Arguments given as Python values, validated with the same rules as JSON."""
        if not isinstance(args, Mapping):
            raise InvalidAction(
                self.name,
                f"arguments of {self.name} must be a JSON object, got {type(args).__name__}",
            )
        try:
            raw = canonical_json(args)
        except TypeError as exc:
            raise InvalidAction(self.name, f"arguments of {self.name}: {exc}") from exc
        return self.validate_json(raw)

    def validate_json(self, raw: str | bytes) -> BaseModel:
        """Strict parsing: no coercion, no missing or extra fields; and every number one the
        policy engine holds exactly (see ``arguments.numbers_beyond_policy``)."""
        try:
            args = self.args_model.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            raise invalid_action(
                self.name, self.args_model, problems(self.name, self.args_model, exc)
            ) from None
        beyond = list(numbers_beyond_policy(args, ()))
        if beyond:
            found = [(field_of(loc), f"field {field_of(loc)!r}: {why}") for loc, why in beyond]
            raise invalid_action(self.name, self.args_model, found)
        return args

    def json_schema(self) -> dict[str, Any]:
        """The arguments' JSON Schema, as models see it."""
        return self.args_model.model_json_schema()

    # -- execution -------------------------------------------------------------------

    async def invoke(self, args: BaseModel, ctx: ToolContext) -> Any:
        """Run once, with the tool's timeout; the result as plain JSON values."""
        kwargs = {name: getattr(args, name) for name in type(args).model_fields}
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        if self.is_async:
            async with asyncio.timeout(self.timeout_s):
                result = await self.fn(**kwargs)
            return to_plain(result)
        thread = asyncio.ensure_future(asyncio.to_thread(self.fn, **kwargs))
        thread.add_done_callback(_retrieve)  # a late failure is not "never retrieved"
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await asyncio.shield(thread)
        except TimeoutError:
            raise ToolStillRunning(
                f"{self.name} did not return within {self.timeout_s}s; its thread cannot be "
                "stopped and may still apply its effect"
            ) from None
        return to_plain(result)

    async def resource_of(self, args: BaseModel, run: Callable[[], RunView]) -> ResourceRef | None:
        """What the call touches; ``run`` gives the run's view, built only for a hook that
        takes it."""
        if self.resource is None:
            return None
        hook: Callable[..., ResourceRef | Awaitable[ResourceRef]] = self.resource
        ref = hook(args, run()) if self.resource_takes_run else hook(args)
        return await ref if inspect.isawaitable(ref) else ref

    def established(self, result: Any) -> dict[str, Any]:
        """The facts a successful call with ``result`` establishes."""
        return {} if self.facts is None else dict(self.facts(result))

    def declaration(self) -> dict[str, Any]:
        """What the tool declares, as policies and the audit log depend on it."""
        hooks = {
            name: _source(fn)
            for name, fn in (("resource", self.resource), ("facts", self.facts))
            if fn is not None
        }
        return {
            "name": self.name,
            "schema": self.json_schema(),
            "effect": self.effect.value,
            "trust": None if self.trust is None else self.trust.value,
            "untrusted": list(self.untrusted),
            "identifiers": list(self.identifiers),
            "sinks": sorted(self.sinks),
            "targets": sorted(self.targets),
            "scopes": sorted(self.scopes),
            "hooks": hooks,
        }

    async def reconciled(self, args: BaseModel, ctx: ToolContext) -> Reconciliation | None:
        if self.reconcile_fn is None:
            return None
        answer = self.reconcile_fn(args, ctx)
        return await answer if inspect.isawaitable(answer) else answer


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def tool(
    *,
    effect: Effect,
    resource: ResourceFn | None = None,
    facts: FactsFn | None = None,
    scopes: Sequence[str] = (),
    trust: Trust | None = None,
    untrusted: Sequence[str] = (),
    identifiers: Sequence[str] = (),
    sinks: Sequence[str] = (),
    targets: Sequence[str] = (),
    sensitive: Sequence[str] = (),
    idempotent: bool | None = None,
    timeout_s: float = 30.0,
    max_retries: int = 2,
    name: str | None = None,
    description: str | None = None,
) -> Callable[[Callable[..., Any]], Tool]:
    """Declare a function as a governed tool. Reads are idempotent unless said otherwise."""

    def wrap(fn: Callable[..., Any]) -> Tool:
        tool_name = name or fn.__name__
        if not tool_name.replace("_", "").isalnum():
            raise ToolDefinitionError(
                f"tool name {tool_name!r}: use letters, digits and underscores"
            )
        if tool_name in _RESERVED_NAMES:
            raise ToolDefinitionError(
                f"tool name {tool_name!r} is the name of an effect class, which policies use "
                "as an action group; rename the tool"
            )
        if timeout_s <= 0 or max_retries < 0:
            raise ToolDefinitionError(
                f"tool {tool_name}: timeout_s must be > 0 and max_retries >= 0"
            )
        model, context_param = args_model(fn, tool_name, ToolContext)
        _check_declared(tool_name, model, "sinks", sinks)
        _check_declared(tool_name, model, "targets", targets)
        for path in (*untrusted, *identifiers):
            if not _PATH.fullmatch(path):
                raise ToolDefinitionError(
                    f"tool {tool_name}: result field {path!r} is not a field path; write "
                    "names joined by dots, with [] after a list (e.g. 'messages[].body')"
                )
        return Tool(
            name=tool_name,
            description=description or inspect.getdoc(fn) or "",
            fn=fn,
            effect=Effect(effect),
            args_model=model,
            resource=resource,
            facts=facts,
            scopes=frozenset(scopes),
            trust=None if trust is None else Trust(trust),
            untrusted=tuple(untrusted),
            identifiers=tuple(identifiers),
            sinks=frozenset(sinks),
            targets=frozenset(targets),
            sensitive=frozenset(sensitive),
            idempotent=effect is Effect.READ if idempotent is None else idempotent,
            timeout_s=timeout_s,
            max_retries=max_retries,
            context_param=context_param,
        )

    return wrap


_PATH = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\])?)*")


def _source(fn: Callable[..., Any]) -> str:
    """A hook's source, so that a changed hook changes the tools' version."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))


def _check_declared(
    tool_name: str, model: type[BaseModel], what: str, names: Sequence[str]
) -> None:
    unknown = sorted(set(names) - set(model.model_fields))
    if unknown:
        raise ToolDefinitionError(
            f"tool {tool_name}: {what} {', '.join(unknown)} are not arguments of it "
            f"(it takes {', '.join(model.model_fields) or 'none'})"
        )


class ToolRegistry:
    """The tools a runtime governs, by name."""

    def __init__(self, tools: Sequence[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for t in tools:
            self.register(t)

    def register(self, t: Tool) -> Tool:
        if not isinstance(t, Tool):
            raise ToolDefinitionError(
                f"{t!r} is not a tool; decorate the function with @proctor.tool(...)"
            )
        if t.name in self._tools:
            raise ToolDefinitionError(f"tool {t.name} is registered twice")
        self._tools[t.name] = t
        self.__dict__.pop("version", None)  # the set of tools changed
        return t

    def get(self, name: str) -> Tool:
        found = self._tools.get(name) if isinstance(name, str) else None
        if found is None:
            known = ", ".join(sorted(self._tools)) or "none"
            raise InvalidAction(
                str(name), f"unknown tool {name!r}; the tools are: {known}", field="tool"
            )
        return found

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    @functools.cached_property
    def version(self) -> str:
        """A digest of every tool's declaration and hooks: recorded beside the bundle
        version with each decision, so a changed declaration or hook shows."""
        ordered = sorted(self._tools.values(), key=lambda t: t.name)
        return digest([t.declaration() for t in ordered])[:16]

    def effects(self) -> dict[str, str]:
        """Tool name to effect class, for the permission matrix."""
        return {t.name: t.effect.value for t in self._tools.values()}


__all__ = [
    "Credential",
    "Effect",
    "Reconciliation",
    "Tool",
    "ToolContext",
    "ToolRegistry",
    "ToolStillRunning",
    "TransientToolError",
    "Trust",
    "tool",
]
