"""What the policies of a bundle read from a request, so only that is sent to Cedar.

Cedar converts every value of the context and of each entity on every call,
and that conversion is most of a decision's cost. A policy observes the context
only through attribute chains (``context.args.amount``) and ``has`` tests
(``context.args has note``); it observes a resource's attributes only through
``resource.<attr>`` and ``resource has <attr>``. Sending just the paths the
policies name gives Cedar the same answers: every value a policy reads, every
key it tests, every error it would hit are still there. A bare ``context`` (for
example ``context == {...}``) reads everything, and then everything is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from proctor.policy._cedar import (
    CedarJSON,
    CedarValueError,
    cedar_record,
    cedar_value,
    dumps,
    uid,
)
from proctor.policy.decision import PolicyRequest, ResourceRef

Reads = dict[str, "Reads | None"]
"""Keys read at one level of a record; ``None`` for a key means its whole value is read."""

_TAG_OPS = frozenset({"getTag", "hasTag"})


@dataclass(frozen=True)
class Footprint:
    """The context paths and resource attributes a policy set reads."""

    context: Reads | None
    """``None`` when the whole context is read."""
    resource_attrs: frozenset[str] | None
    """Attribute names read from the resource; ``None`` when all may be read (tags)."""

    @classmethod
    def of(cls, conditions: Iterable[Mapping[str, Any]]) -> Footprint:
        """The footprint of the condition expressions (Cedar JSON) of a policy set."""
        walker = _Walker()
        for expr in conditions:
            walker.visit(expr)
        return cls(context=walker.context, resource_attrs=walker.resource_attrs())

    def context_json(self, request: PolicyRequest) -> str:
        """The context Cedar needs for ``request``, as JSON."""
        top: dict[str, Any] = dict(request.extra_context)
        for key in ("args", "run"):
            if key in top:
                raise CedarValueError(f"context.{key}: extra_context may not replace `{key}`")
        top["args"] = request.args
        top["run"] = request.run
        if self.context is None:
            return dumps(cedar_record(top, "context"))
        return dumps(_project(top, self.context, "context"))

    def resource_entity(self, resource: ResourceRef) -> CedarJSON | None:
        """The resource entity with the attributes the policies read; ``None`` if none are."""
        if self.resource_attrs is None:
            attrs = cedar_record(resource.attrs, "resource")
        elif not self.resource_attrs:
            return None
        else:
            attrs = _project(resource.attrs, dict.fromkeys(self.resource_attrs), "resource")
        return {"uid": uid(resource.type, resource.id), "attrs": attrs, "parents": []}


def _project(values: Mapping[str, Any], reads: Reads, path: str) -> dict[str, CedarJSON]:
    """``values`` as a Cedar record holding only the keys in ``reads``."""
    record: dict[str, CedarJSON] = {}
    for key, below in reads.items():
        value = values.get(key)
        if value is None:
            continue
        where = f"{path}.{key}"
        if below is not None and isinstance(value, Mapping):
            record[key] = _project(value, below, where)
        else:
            record[key] = cedar_value(value, where)
    return record


class _Walker:
    """Collects the reads of expressions; a bare ``context`` widens to everything."""

    def __init__(self) -> None:
        self.context: Reads | None = {}
        self._resource: set[str] | None = set()

    def resource_attrs(self) -> frozenset[str] | None:
        return None if self._resource is None else frozenset(self._resource)

    def visit(self, expr: Mapping[str, Any]) -> None:
        chain = _chain(expr)
        if chain is not None:
            self._read(*chain, whole=True)
            return
        (op, body), *_ = expr.items()
        if op == "Value":
            return
        if op == "has":
            chain = _chain(body["left"])
            if chain is not None:
                variable, attrs = chain
                self._read(variable, (*attrs, body["attr"]), whole=False)
                return
        if op in _TAG_OPS and _chain(body["left"]) == ("resource", ()):
            self._resource = None
        for child in _children(body):
            self.visit(child)

    def _read(self, variable: str, attrs: Sequence[str], *, whole: bool) -> None:
        if variable == "context":
            self._read_context(attrs, whole=whole)
        elif variable == "resource" and attrs and self._resource is not None:
            self._resource.add(attrs[0])

    def _read_context(self, attrs: Sequence[str], *, whole: bool) -> None:
        if not attrs:
            if whole:
                self.context = None
            return
        level = self.context
        for depth, attr in enumerate(attrs):
            if level is None:
                return
            last = depth == len(attrs) - 1
            if last:
                if whole:
                    level[attr] = None
                elif attr not in level:
                    level[attr] = {}
                return
            if attr not in level:
                level[attr] = {}
            level = level[attr]


def _chain(expr: Mapping[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    """``(variable, attrs)`` when ``expr`` is a variable or an attribute chain on one."""
    attrs: list[str] = []
    while len(expr) == 1:
        (op, body), *_ = expr.items()
        if op == ".":
            attrs.append(body["attr"])
            expr = body["left"]
        elif op == "Var":
            return str(body), tuple(reversed(attrs))
        else:
            return None
    return None


def _children(body: Any) -> Iterable[Mapping[str, Any]]:
    """The sub-expressions of an expression's body (one-key mappings, also inside lists)."""
    if not isinstance(body, Mapping | list):
        return
    items: Iterable[Any] = body.values() if isinstance(body, Mapping) else body
    for item in items:
        if isinstance(item, Mapping) and len(item) == 1:
            yield item
        elif isinstance(item, list):
            yield from (i for i in item if isinstance(i, Mapping) and len(i) == 1)
