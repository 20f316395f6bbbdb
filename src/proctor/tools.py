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
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from proctor.argschema import ArgumentSchema
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
from proctor.tool_types import (
    NAME,
    PATH,
    SCHEMA_NAME,
    Credential,
    Effect,
    FactsFn,
    ReconcileFn,
    Reconciliation,
    ResourceFn,
    RunView,
    ToolContext,
    ToolStillRunning,
    Trust,
    check_declared,
    check_name,
)


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
    argument_schema: ArgumentSchema | None = None
    """For a tool built from a JSON Schema (``Tool.from_schema``): its arguments' schema.
    Its function takes the arguments as one JSON object, and the context if it asks."""
    is_async: bool = field(init=False)
    resource_takes_run: bool = field(init=False)
    """Whether the resource hook takes the run as its second parameter."""

    def __post_init__(self) -> None:
        self.is_async = inspect.iscoroutinefunction(self.fn)
        # Read once here: inspecting a signature on every decision costs as much as it.
        self.resource_takes_run = (
            self.resource is not None and len(inspect.signature(self.resource).parameters) >= 2
        )

    @classmethod
    def from_schema(
        cls,
        name: str,
        description: str,
        input_schema: Mapping[str, Any],
        call: Callable[..., Any],
        *,
        effect: Effect,
        **declared: Any,
    ) -> Tool:
        """A governed tool whose arguments a JSON Schema describes (an MCP tool, an OpenAPI
        operation, a framework's tool), with the same declarations as ``@tool`` takes.

        ``call(args)`` or ``call(args, ctx)``, sync or async, receives the validated
        arguments as one JSON object (``dict``), with the schema's defaults filled in, and
        the ``ToolContext`` if it takes a second parameter.
        """
        try:
            declaration = ToolDeclaration(effect, **declared)
        except TypeError as exc:
            raise ToolDefinitionError(f"tool {name}: {exc}") from None
        return declaration.schema_tool(name, description, input_schema, call)

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
        if self.argument_schema is not None:
            parsed = self.argument_schema.validate_json(raw)
            beyond = list(numbers_beyond_policy(parsed.model_dump(), ()))
            if beyond:
                raise self.argument_schema.invalid(
                    [(field_of(loc), f"field {field_of(loc)!r}: {why}") for loc, why in beyond]
                )
            return parsed
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
        if self.argument_schema is not None:
            return self.argument_schema.schema
        return self.args_model.model_json_schema()

    # -- execution -------------------------------------------------------------------

    async def invoke(self, args: BaseModel, ctx: ToolContext) -> Any:
        """Run once, with the tool's timeout; the result as plain JSON values."""
        positional: tuple[Any, ...] = ()
        kwargs: dict[str, Any] = {}
        if self.argument_schema is not None:
            plain = args.model_dump(mode="json")
            positional = (plain, ctx) if self.context_param is not None else (plain,)
        else:
            kwargs = {name: getattr(args, name) for name in type(args).model_fields}
            if self.context_param is not None:
                kwargs[self.context_param] = ctx
        if self.is_async:
            async with asyncio.timeout(self.timeout_s):
                result = await self.fn(*positional, **kwargs)
            return to_plain(result)
        thread = asyncio.ensure_future(asyncio.to_thread(self.fn, *positional, **kwargs))
        thread.add_done_callback(_retrieve)  # a late failure is not "never retrieved"
        try:
            async with asyncio.timeout(self.timeout_s):
                result = await asyncio.shield(thread)
        except TimeoutError:
            raise ToolStillRunning(
                f"{self.name} did not return within {self.timeout_s}s; its thread cannot be "
                "stopped and may still apply its effect"
            ) from None
        if inspect.isawaitable(result):  # a callable object whose __call__ is async
            async with asyncio.timeout(self.timeout_s):
                result = await result
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
    declared = ToolDeclaration(
        effect,
        resource=resource,
        facts=facts,
        scopes=scopes,
        trust=trust,
        untrusted=untrusted,
        identifiers=identifiers,
        sinks=sinks,
        targets=targets,
        sensitive=sensitive,
        idempotent=idempotent,
        timeout_s=timeout_s,
        max_retries=max_retries,
    )

    def wrap(fn: Callable[..., Any]) -> Tool:
        tool_name = name or fn.__name__
        check_name(tool_name, NAME)
        model, context_param = args_model(fn, tool_name, ToolContext)
        return declared.tool(
            fn,
            tool_name,
            description or inspect.getdoc(fn) or "",
            model,
            context_param=context_param,
        )

    return wrap


class ToolDeclaration:
    """What a tool declares besides its arguments (the keywords of ``@tool``), checked
    against them when the tool is built. Frameworks' tools and MCP tools get theirs from
    the integrator (``proctor.integrations.Declarations``)."""

    def __init__(
        self,
        effect: Effect | str,
        *,
        resource: ResourceFn | None = None,
        facts: FactsFn | None = None,
        scopes: Sequence[str] = (),
        trust: Trust | str | None = None,
        untrusted: Sequence[str] = (),
        identifiers: Sequence[str] = (),
        sinks: Sequence[str] = (),
        targets: Sequence[str] = (),
        sensitive: Sequence[str] = (),
        idempotent: bool | None = None,
        timeout_s: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        try:
            self.effect = Effect(effect)
            self.trust = None if trust is None else Trust(trust)
        except ValueError as exc:
            raise ToolDefinitionError(f"{exc}; effects: {', '.join(Effect)}") from None
        self.resource, self.facts = resource, facts
        self.scopes, self.sinks = frozenset(scopes), frozenset(sinks)
        self.targets, self.sensitive = frozenset(targets), frozenset(sensitive)
        self.untrusted, self.identifiers = tuple(untrusted), tuple(identifiers)
        self.idempotent = self.effect is Effect.READ if idempotent is None else idempotent
        """Reads are idempotent unless said otherwise."""
        self.timeout_s, self.max_retries = timeout_s, max_retries

    def __repr__(self) -> str:
        return f"ToolDeclaration({self.effect.value!r}, trust={self.trust})"

    def schema_tool(
        self,
        name: str,
        description: str,
        input_schema: Mapping[str, Any],
        call: Callable[..., Any],
    ) -> Tool:
        """The tool ``Tool.from_schema`` builds, with this declaration."""
        check_name(name, SCHEMA_NAME)
        schema = ArgumentSchema(name, input_schema)
        takes_context = len(inspect.signature(call).parameters) >= 2
        return self.tool(
            call,
            name,
            description,
            schema.model,
            context_param="ctx" if takes_context else None,
            argument_schema=schema,
        )

    def tool(
        self,
        fn: Callable[..., Any],
        name: str,
        description: str,
        model: type[BaseModel],
        *,
        context_param: str | None,
        argument_schema: ArgumentSchema | None = None,
    ) -> Tool:
        if self.timeout_s <= 0 or self.max_retries < 0:
            raise ToolDefinitionError(f"tool {name}: timeout_s must be > 0 and max_retries >= 0")
        arguments = argument_schema.names() if argument_schema else list(model.model_fields)
        check_declared(name, arguments, "sinks", self.sinks)
        check_declared(name, arguments, "targets", self.targets)
        for path in (*self.untrusted, *self.identifiers):
            if not PATH.fullmatch(path):
                raise ToolDefinitionError(
                    f"tool {name}: result field {path!r} is not a field path; write "
                    "names joined by dots, with [] after a list (e.g. 'messages[].body')"
                )
        return Tool(
            name=name,
            description=description,
            fn=fn,
            effect=self.effect,
            args_model=model,
            resource=self.resource,
            facts=self.facts,
            scopes=self.scopes,
            trust=self.trust,
            untrusted=self.untrusted,
            identifiers=self.identifiers,
            sinks=self.sinks,
            targets=self.targets,
            sensitive=self.sensitive,
            idempotent=self.idempotent,
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            context_param=context_param,
            argument_schema=argument_schema,
        )


def _source(fn: Callable[..., Any]) -> str:
    """A hook's source, so that a changed hook changes the tools' version."""
    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return getattr(fn, "__qualname__", repr(fn))


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

    def put(self, t: Tool) -> Tool:
        """Register ``t``, or replace the tool of its name (its declaration changed)."""
        self._tools.pop(getattr(t, "name", None), None)  # type: ignore[arg-type]
        return self.register(t)

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
    "ToolDeclaration",
    "ToolRegistry",
    "ToolStillRunning",
    "TransientToolError",
    "Trust",
    "tool",
]
