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
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from proctor.errors import InvalidAction, ToolDefinitionError, TransientToolError
from proctor.jsonvalue import canonical_json, to_plain
from proctor.policy import ResourceRef
from proctor.policy._cedar import number_problem


class Effect(StrEnum):
    """What running the tool does to the world."""

    READ = "read"
    WRITE = "write"
    IRREVERSIBLE = "irreversible"


class Trust(StrEnum):
    """Whether the tool's output is trusted, or third-party text that may carry injections."""

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


ResourceFn = Callable[[BaseModel], ResourceRef | Awaitable[ResourceRef]]
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
    scopes: frozenset[str] = frozenset()
    trust: Trust = Trust.TRUSTED
    sensitive: frozenset[str] = frozenset()
    """Argument and result fields that are masked before anything is stored."""
    idempotent: bool = False
    timeout_s: float = 30.0
    max_retries: int = 2
    reconcile_fn: ReconcileFn | None = None
    context_param: str | None = None
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        self.is_async = inspect.iscoroutinefunction(self.fn)

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
        policy engine holds exactly (see ``_numbers_beyond_policy``)."""
        try:
            args = self.args_model.model_validate_json(raw, strict=True)
        except ValidationError as exc:
            raise _invalid_action(self, _problems(self, exc)) from None
        beyond = list(_numbers_beyond_policy(args, ()))
        if beyond:
            raise _invalid_action(
                self, [(_field_of(loc), f"field {_field_of(loc)!r}: {why}") for loc, why in beyond]
            )
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

    async def resource_of(self, args: BaseModel) -> ResourceRef | None:
        if self.resource is None:
            return None
        ref = self.resource(args)
        return await ref if inspect.isawaitable(ref) else ref

    async def reconciled(self, args: BaseModel, ctx: ToolContext) -> Reconciliation | None:
        if self.reconcile_fn is None:
            return None
        answer = self.reconcile_fn(args, ctx)
        return await answer if inspect.isawaitable(answer) else answer


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


def _field_of(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(arguments)"


def _numbers_beyond_policy(
    value: object, loc: tuple[int | str, ...]
) -> Iterator[tuple[tuple[int | str, ...], str]]:
    """Every number in ``value`` that Cedar would round or refuse, with where it is.

    Cedar's ``decimal`` keeps four places and its ``long`` 64 bits; a policy deciding on
    ``100.00005`` would see ``100.0000``, and the tool would receive more than was allowed.
    Such a call is invalid, so the tool never receives a value the policy did not see.
    """
    if isinstance(value, bool):
        return
    if isinstance(value, int | float | Decimal):
        problem = number_problem(value)
        if problem is not None:
            yield loc, problem
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _numbers_beyond_policy(getattr(value, name), (*loc, name))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _numbers_beyond_policy(item, (*loc, str(key)))
    elif isinstance(value, list | tuple | set | frozenset):
        for index, item in enumerate(value):
            yield from _numbers_beyond_policy(item, (*loc, index))


def _invalid_action(tool: Tool, problems: list[tuple[str, str]]) -> InvalidAction:
    first_field, first = problems[0]
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    allowed = ", ".join(type_summary(tool.args_model))
    return InvalidAction(
        tool.name,
        f"invalid call to {tool.name}: {first}{more}. {tool.name} takes: {allowed}.",
        field=first_field,
        problems=tuple(problems),
    )


def _problems(tool: Tool, exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for error in exc.errors(include_url=False, include_input=False):
        name = _field_of(error["loc"])
        kind = error["type"]
        if kind == "json_invalid":
            message = f"arguments are not valid JSON ({error['msg']})"
        elif kind == "missing":
            message = f"field {name!r} is required ({_expected(tool, name)})"
        elif kind == "extra_forbidden":
            message = f"field {name!r} is not an argument of {tool.name}"
        else:
            message = f"field {name!r}: {error['msg']} ({_expected(tool, name)})"
        problems.append((name, message))
    return problems


def _expected(tool: Tool, name: str) -> str:
    info = tool.args_model.model_fields.get(name.split(".")[0])
    if info is None:
        return "not an argument"
    return f"expected {_type_name(info.annotation)}"


def _type_name(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")


def type_summary(model: type[BaseModel]) -> list[str]:
    """``name: type`` for each argument, ``?`` marking optional ones."""
    out = []
    for name, info in model.model_fields.items():
        mark = "" if info.is_required() else "?"
        out.append(f"{name}{mark}: {_type_name(info.annotation)}")
    return out


def _args_model(fn: Callable[..., Any], name: str) -> tuple[type[BaseModel], str | None]:
    hints = get_type_hints(fn)
    fields: dict[str, Any] = {}
    context_param = None
    for param in inspect.signature(fn).parameters.values():
        annotation = hints.get(param.name)
        if annotation is ToolContext:
            context_param = param.name
            continue
        if annotation is None:
            raise ToolDefinitionError(
                f"tool {name}: parameter {param.name!r} needs a type annotation "
                "so its arguments can be validated"
            )
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"tool {name}: *args/**kwargs cannot be validated; declare each argument"
            )
        default = ... if param.default is inspect.Parameter.empty else param.default
        fields[param.name] = (annotation, default)
    model = create_model(
        f"{name}_args",
        __config__=ConfigDict(extra="forbid", strict=True, frozen=True),
        **fields,
    )
    return model, context_param


def tool(
    *,
    effect: Effect,
    resource: ResourceFn | None = None,
    scopes: Sequence[str] = (),
    trust: Trust = Trust.TRUSTED,
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
        model, context_param = _args_model(fn, tool_name)
        return Tool(
            name=tool_name,
            description=description or inspect.getdoc(fn) or "",
            fn=fn,
            effect=Effect(effect),
            args_model=model,
            resource=resource,
            scopes=frozenset(scopes),
            trust=Trust(trust),
            sensitive=frozenset(sensitive),
            idempotent=effect is Effect.READ if idempotent is None else idempotent,
            timeout_s=timeout_s,
            max_retries=max_retries,
            context_param=context_param,
        )

    return wrap


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
