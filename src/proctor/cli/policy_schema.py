"""The Cedar schema of an app, written from its tools: what ``proctor policy schema``
prints and what ``proctor policy check --app`` checks a bundle against.

Each tool is an action in the group of its effect class, its arguments typed as
``context.args``; its resource is the entity type its resource hook declares
(``declare_resource``), else ``Tool``; ``context.run`` holds the run's facts
(``calls_by_tool`` and ``totals`` per tool), ``context.provenance`` each argument's
origin, and the roles are the app's own, so a misspelt role is an unknown entity.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Optional
from uuid import UUID

from pydantic import BaseModel

from proctor.app import App
from proctor.policy import ResourceType, declared_resource
from proctor.policy._cedar import EFFECT_CLASSES
from proctor.runs.facts import RunFacts
from proctor.runs.model import RunSpec
from proctor.tools import Tool, ToolRegistry

_SCALARS: dict[type, str] = {
    bool: "Bool",
    int: "Long",
    float: "decimal",
    Decimal: "decimal",
    str: "String",
    UUID: "String",
    datetime: "datetime",
    date: "datetime",
    timedelta: "duration",
}
_INDENT = "  "


class Untyped(Exception):
    """A Python type with no Cedar type (a free-form dict, ``Any``): left out, with why."""


def app_roles(app: App) -> list[str]:
    """The roles the app's agents act in: its own list, else its eval suite's run role."""
    if app.roles:
        return sorted(set(app.roles))
    run = getattr(app.suite, "run", None)
    role = getattr(run, "role", None)
    return [role] if isinstance(role, str) else []


def cedar_type(annotation: Any) -> tuple[str, bool]:
    """``annotation`` as a Cedar type, and whether ``None`` is allowed (an optional
    attribute: Cedar leaves a ``None`` out of the record)."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return cedar_type(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(members) < len(typing.get_args(annotation))
        kinds = {cedar_type(m)[0] for m in members}
        if len(kinds) != 1:
            raise Untyped(f"a union of {', '.join(sorted(kinds))}")
        return kinds.pop(), optional
    if origin is typing.Literal:
        kinds = {cedar_type(type(v))[0] for v in typing.get_args(annotation)}
        if len(kinds) != 1:
            raise Untyped("a literal of mixed types")
        return kinds.pop(), False
    if origin in (list, set, frozenset, tuple, Sequence, Iterable):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if len(set(args)) != 1:
            raise Untyped("a sequence of mixed or unknown items")
        return f"Set<{cedar_type(args[0])[0]}>", False
    return _class_type(annotation), False


def _class_type(annotation: Any) -> str:
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return cedar_type(type(next(iter(annotation)).value))[0]
        if issubclass(annotation, BaseModel):
            return record(_fields(annotation))
        for python, cedar in _SCALARS.items():
            if issubclass(annotation, python):
                return cedar
    raise Untyped(f"{getattr(annotation, '__name__', annotation)} has no Cedar type")


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    return {name: info.annotation for name, info in model.model_fields.items()}


def record(attrs: Mapping[str, Any], *, skipped: list[str] | None = None) -> str:
    """A Cedar record type of ``attrs`` (name → Python type); one Cedar cannot type is
    left out, and named in ``skipped``."""
    parts = []
    for name, annotation in attrs.items():
        try:
            kind, optional = cedar_type(annotation)
        except Untyped as why:
            if skipped is not None:
                skipped.append(f"{name}: {why}")
            continue
        parts.append(f"{_q(name)}{'?' if optional else ''}: {kind}")
    return "{ " + ", ".join(parts) + " }" if parts else "{}"


def _arg_fields(t: Tool) -> dict[str, Any]:
    fields = {}
    for name, info in t.args_model.model_fields.items():
        optional = not info.is_required()
        fields[name] = Optional[info.annotation] if optional else info.annotation  # noqa: UP045
    return fields


def app_schema(app: App) -> str:
    """The Cedar schema (human-readable syntax) of ``app``'s tools and roles."""
    tools = sorted(app.tools, key=lambda t: t.name)
    resources: dict[str, ResourceType] = {}
    for t in tools:
        kind = declared_resource(t.resource) if t.resource is not None else None
        if kind is not None:
            resources.setdefault(kind.name, kind)
    roles = app_roles(app)
    out = [
        "// The Cedar schema of the app's tools, written by `proctor policy schema`.",
        "// Check a bundle against it: proctor policy check BUNDLE --app M:A",
        "",
        f"entity Role enum [{', '.join(map(_q, roles))}];"
        if roles
        else "entity Role;  // the app names no roles: any role is accepted",
        "entity Agent in [Role] { role: String, tenant: String };",
        "entity Tool;",
    ]
    for name, kind in sorted(resources.items()):
        out.append(f"entity {name} {record(kind.attrs)};")
    spec = RunSpec(agent="-", role="-", tenant="-", workflow="-", requester="-")
    totals_by_tool = RunFacts.of(ToolRegistry(tools), spec).totals
    calls = [f"{_q(t.name)}: Long" for t in tools]
    totals = [
        f"{_q(t.name)}: {record(dict.fromkeys(totals_by_tool.get(t.name, {}), Decimal))}"
        for t in tools
    ]
    out += [
        "",
        "type Run = {",
        f"{_INDENT}tenant: String, workflow: String, mode: String, agent: String,",
        f"{_INDENT}requester: String, calls: Long, tainted: Bool,",
        f"{_INDENT}calls_by_tool: {{",
        *(f"{_INDENT * 2}{c}," for c in calls),
        f"{_INDENT}}},",
        f"{_INDENT}totals: {{",
        *(f"{_INDENT * 2}{c}," for c in totals),
        f"{_INDENT}}},",
        "};",
        "type Plan = { committed: Bool, in_plan: Bool, args_match: Bool, sinks_match: Bool };",
        "type Now = { iso: String, epoch: Long, date: String, hour: Long, weekday: String };",
        "",
        f"action {', '.join(map(_q, EFFECT_CLASSES))};",
    ]
    for t in tools:
        skipped: list[str] = []
        args = _arg_fields(t)
        kind = declared_resource(t.resource) if t.resource is not None else None
        resource = kind.name if kind is not None else "Tool"
        if t.resource is not None and kind is None:
            out.append(
                f"// {t.name}: its resource hook declares no type (declare_resource), "
                "so its resource is checked as Tool"
            )
        # Every argument given has a verdict; an argument left out has none.
        provenance = record({name: str | _absent(kind) for name, kind in args.items()})
        arguments = record(args, skipped=skipped)
        out += [f"// {t.name}: argument {s} (left out)" for s in skipped]
        out += [
            f"action {_q(t.name)} in [{_q(t.effect.value)}] appliesTo {{",
            f"{_INDENT}principal: [Agent],",
            f"{_INDENT}resource: [{resource}],",
            f"{_INDENT}context: {{",
            f"{_INDENT * 2}args: {arguments},",
            f"{_INDENT * 2}run: Run,",
            f"{_INDENT * 2}provenance: {provenance},",
            f"{_INDENT * 2}untrusted_args: Set<String>, untrusted_sinks: Set<String>,",
            f"{_INDENT * 2}untrusted_targets: Set<String>, ungrounded_args: Set<String>,",
            f"{_INDENT * 2}plan: Plan, now: Now,",
            f"{_INDENT}}},",
            "};",
        ]
    return "\n".join(out) + "\n"


def _q(name: str) -> str:
    return json.dumps(name)


def _absent(annotation: Any) -> Any:
    """``None`` when ``annotation`` admits it (the attribute may be missing), else ``str``."""
    members = typing.get_args(annotation)
    return None if type(None) in members else str
