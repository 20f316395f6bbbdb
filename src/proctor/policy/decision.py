"""What the policy engine is asked, and what it answers.

A ``PolicyRequest`` describes one proposed tool call: who (``Principal``),
which tool, what it touches (``ResourceRef``), its typed arguments and facts
about the run. A ``Decision`` is the answer as a value, never an exception:
its effect, the ids of the policies that decided, the version of the bundle
that decided, and a short reason a person can read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from proctor.jsonvalue import JSONValue


class DecisionEffect(StrEnum):
    """What may happen to a proposed call."""

    ALLOW = "allow"
    REQUIRE_APPROVAL = "require_approval"
    DENY = "deny"


@dataclass(frozen=True)
class Principal:
    """The agent proposing a call: ``Agent::"<agent>"``, a member of ``Role::"<role>"``."""

    agent: str
    """The agent's name; policies see it as ``principal == Agent::"<agent>"``."""
    role: str
    """The agent's role: ``principal in Role::"<role>"``, and ``principal.role``."""
    tenant: str
    """The tenant the agent acts for; policies see it as ``principal.tenant``."""


@dataclass(frozen=True)
class ResourceRef:
    """What a call touches, as a Cedar entity: ``<type>::"<id>"`` with attributes."""

    type: str
    """The Cedar entity type, e.g. ``Order``."""
    id: str
    """The entity id, e.g. an order number."""
    attrs: Mapping[str, JSONValue] = field(default_factory=dict)
    """Facts about the resource, e.g. ``{"status": "delivered", "total": Decimal("120.00")}``."""


@dataclass(frozen=True)
class ResourceType:
    """The kind of ``ResourceRef`` a tool's resource hook returns: its Cedar entity type and
    its attributes' Python types (``X | None`` for one that may be missing). Declared on
    the hook with ``declare_resource``; ``proctor policy schema`` writes it into the schema
    that ``proctor policy check --app`` checks policies against."""

    name: str
    attrs: Mapping[str, Any] = field(default_factory=dict)


_RESOURCE_TYPE = "__proctor_resource_type__"
_Hook = TypeVar("_Hook")


def declare_resource(hook: _Hook, kind: ResourceType) -> _Hook:
    """``hook``, marked as returning resources of ``kind``."""
    setattr(hook, _RESOURCE_TYPE, kind)
    return hook


def declared_resource(hook: Any) -> ResourceType | None:
    """What ``declare_resource`` said of ``hook``; None when nothing was declared."""
    kind = getattr(hook, _RESOURCE_TYPE, None)
    return kind if isinstance(kind, ResourceType) else None


@dataclass(frozen=True)
class PolicyRequest:
    """One proposed tool call, as the policy engine sees it."""

    principal: Principal
    """Who proposes the call."""
    tool: str
    """The tool's name; policies see it as ``action == Action::"<tool>"``."""
    effect_class: str
    """``read``, ``write`` or ``irreversible``; policies see ``action in Action::"<class>"``."""
    resource: ResourceRef | None
    """What the call touches; ``None`` makes the resource ``Tool::"<tool>"``."""
    args: Mapping[str, JSONValue]
    """The validated, typed arguments; policies see them as ``context.args``."""
    run: Mapping[str, JSONValue]
    """Facts about the run (tenant, workflow, mode, calls, tainted, ...): ``context.run``."""
    extra_context: Mapping[str, JSONValue] = field(default_factory=dict)
    """Further top-level context entries, e.g. ``provenance``: ``context.provenance``."""


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The policy engine's answer to one ``PolicyRequest``."""

    effect: DecisionEffect
    """Allow, require approval, or deny."""
    approval_roles: tuple[str, ...]
    """Roles of which any one may approve; non-empty exactly when approval is required."""
    policy_ids: tuple[str, ...]
    """The policies that decided: the satisfied forbids on a forbid, the satisfied permits
    on allow or approval, the failing policies on an evaluation error, none on default deny."""
    bundle_version: str
    """``str(BundleVersion)`` of the bundle that decided."""
    latency_us: float
    """Microseconds the decision took."""
    errors: tuple[str, ...] = ()
    """Evaluation errors; any error makes the decision a deny (fail closed)."""
    reason: str
    """A short explanation a person can read, e.g. ``permitted by refund-small``."""
    inputs: Mapping[str, Any] | None = None
    """What it was decided on, as recorded with it: ``resource`` (type, id, attributes),
    ``run`` (``context.run``) and ``context`` (the other context entries: provenance and
    its sets). ``proctor policy replay`` decides again on these."""

    def __post_init__(self) -> None:
        needs_roles = self.effect is DecisionEffect.REQUIRE_APPROVAL
        if needs_roles != bool(self.approval_roles):
            raise ValueError(
                "Decision.approval_roles must be non-empty exactly when the effect is "
                f"require_approval (effect={self.effect}, approval_roles={self.approval_roles})"
            )

    @property
    def allowed(self) -> bool:
        """True when the call may run without anyone's approval."""
        return self.effect is DecisionEffect.ALLOW

    def to_json(self) -> dict[str, Any]:
        """The decision as a JSON object, for audit payloads."""
        return {
            "effect": self.effect.value,
            "approval_roles": list(self.approval_roles),
            "policy_ids": list(self.policy_ids),
            "bundle_version": self.bundle_version,
            "latency_us": self.latency_us,
            "errors": list(self.errors),
            "reason": self.reason,
            **({} if self.inputs is None else {"inputs": dict(self.inputs)}),
        }

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> Decision:
        """A decision as ``to_json`` stored it (in a step row or an audit payload)."""
        return cls(
            effect=DecisionEffect(stored["effect"]),
            approval_roles=tuple(stored["approval_roles"]),
            policy_ids=tuple(stored["policy_ids"]),
            bundle_version=stored["bundle_version"],
            latency_us=float(stored["latency_us"]),
            errors=tuple(stored.get("errors", ())),
            reason=stored.get("reason", ""),
            inputs=stored.get("inputs"),
        )


_DECIMAL = "__decimal__"


def _tagged(value: Any) -> Any:
    """JSON that keeps decimals decimals (policies compare them as Cedar decimals)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return {_DECIMAL: str(value)}
    if isinstance(value, Mapping):
        return {str(k): _tagged(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_tagged(v) for v in value]
    return value


def _untagged(value: Any) -> Any:
    if isinstance(value, Mapping):
        if set(value) == {_DECIMAL}:
            return Decimal(value[_DECIMAL])
        return {k: _untagged(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untagged(v) for v in value]
    return value


def inputs_of(request: PolicyRequest) -> dict[str, Any]:
    """What a decision of ``request`` is recorded with, in JSON form. Cheap: it runs on
    every decision. Resource attributes keep their decimals tagged; the run's totals are
    decimals by definition and come back as such."""
    resource = request.resource
    return {
        "resource": None
        if resource is None
        else {"type": resource.type, "id": resource.id, "attrs": _tagged(resource.attrs)},
        "run": request.run,
        "context": request.extra_context,
    }


def request_from_inputs(
    inputs: Mapping[str, Any],
    principal: Principal,
    tool: str,
    effect_class: str,
    args: Mapping[str, JSONValue],
) -> PolicyRequest:
    """The request a decision was made on, from its recorded inputs."""
    resource = inputs.get("resource")
    run = dict(inputs.get("run", {}))
    if "totals" in run:  # sums of numeric arguments: decimals, stored as text
        run["totals"] = {
            tool_name: {name: Decimal(str(v)) for name, v in fields.items()}
            for tool_name, fields in run["totals"].items()
        }
    return PolicyRequest(
        principal=principal,
        tool=tool,
        effect_class=effect_class,
        resource=None
        if resource is None
        else ResourceRef(resource["type"], resource["id"], _untagged(resource.get("attrs", {}))),
        args=args,
        run=run,
        extra_context=inputs.get("context", {}),
    )
