"""The permission matrix: what each role may do with each tool, read from the policies.

Each cell comes from Cedar's partial evaluation: the principal (an agent of the
row's role) and the action (the column's tool, in its effect-class group) are
known; the resource, the context and the agent's tenant are not. Policies that
cannot apply drop out, policies that always apply stay, and the rest leave a
residual condition, printed as Cedar text.

    ALLOWED         an unconditional permit without @approval applies, no forbid can
    NEEDS_APPROVAL  only unconditional @approval permits apply, no forbid can
    CONDITIONAL     the outcome depends on the resource, the arguments or the run
    DENIED          an unconditional forbid applies, or no permit can

Policies that name a specific agent (``principal == Agent::"bot-7"``) do not
apply to a role's row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import cedarpy
from cedarpy import pst

from proctor.jsonvalue import JSONValue
from proctor.policy import _render
from proctor.policy._cedar import (
    EFFECT_CLASSES,
    CedarJSON,
    action_entity,
    action_uid,
    dumps,
    principal_entity,
    principal_uid,
)
from proctor.policy._engine import split_error
from proctor.policy.bundle import PolicyBundle
from proctor.policy.decision import Principal
from proctor.policy.policies import PolicyInfo

MATRIX_AGENT = "*"
"""The agent id standing for "any agent of the role" in a row."""
_UNKNOWN_TENANT: CedarJSON = {"__extn": {"fn": "unknown", "arg": "principal.tenant"}}


class CellKind(StrEnum):
    ALLOWED = "allowed"
    NEEDS_APPROVAL = "needs_approval"
    CONDITIONAL = "conditional"
    DENIED = "denied"


@dataclass(frozen=True)
class MatrixCell:
    """What one role may do with one tool."""

    kind: CellKind
    approval_roles: tuple[str, ...] = ()
    """Roles that may approve: for NEEDS_APPROVAL, and for CONDITIONAL when approval may be due."""
    conditions: tuple[str, ...] = ()
    """For CONDITIONAL: each applicable policy, ``<id>: <effect> when <Cedar condition>``."""
    policy_ids: tuple[str, ...] = ()
    """The policies that decide this cell (none when no permit applies)."""
    errors: tuple[str, ...] = ()
    """Evaluation errors that deny every call in this cell."""

    def to_json(self) -> dict[str, JSONValue]:
        return {
            "kind": self.kind.value,
            "approval_roles": list(self.approval_roles),
            "conditions": list(self.conditions),
            "policy_ids": list(self.policy_ids),
            "errors": list(self.errors),
        }


@dataclass(frozen=True)
class PermissionMatrix:
    """A cell for every role and tool of a bundle."""

    bundle_version: str
    roles: tuple[str, ...]
    tools: tuple[str, ...]
    effect_classes: Mapping[str, str | None]
    """Each tool's effect class; ``None`` when unknown (group policies then do not apply)."""
    cells: Mapping[tuple[str, str], MatrixCell] = field(repr=False)
    """By ``(role, tool)``."""

    def cell(self, role: str, tool: str) -> MatrixCell:
        return self.cells[(role, tool)]

    def rows(self) -> Iterator[tuple[str, tuple[MatrixCell, ...]]]:
        """``(role, cells in the order of tools)`` for each role, for a table."""
        for role in self.roles:
            yield role, tuple(self.cells[(role, tool)] for tool in self.tools)

    def to_json(self) -> dict[str, JSONValue]:
        return {
            "bundle_version": self.bundle_version,
            "roles": list(self.roles),
            "tools": [{"name": t, "effect_class": self.effect_classes[t]} for t in self.tools],
            "cells": {
                role: {tool: cell.to_json() for tool, cell in zip(self.tools, cells, strict=True)}
                for role, cells in self.rows()
            },
        }


def permission_matrix(
    bundle: PolicyBundle,
    tools: Mapping[str, str] | None = None,
    roles: Sequence[str] | None = None,
) -> PermissionMatrix:
    """The permission matrix of ``bundle``.

    ``tools`` maps each tool name to its effect class (``read``, ``write``,
    ``irreversible``); by default, every ``Action::"x"`` the policies name other
    than the effect-class groups, with no effect class. ``roles`` defaults to
    every ``Role::"x"`` the policies name. Raises ``ValueError`` for an unknown
    effect class.
    """
    named = _named_entities(bundle.policy_set)
    effect_classes: dict[str, str | None]
    if tools is None:
        effect_classes = {t: None for t in sorted(named.get("Action", set()) - set(EFFECT_CLASSES))}
    else:
        effect_classes = dict(tools)
    row_roles = tuple(roles) if roles is not None else tuple(sorted(named.get("Role", set())))
    infos = {policy.id: policy for policy in bundle.policies}
    cells = {
        (role, tool): _cell(bundle.policy_set, infos, role, tool, effect_class)
        for role in row_roles
        for tool, effect_class in effect_classes.items()
    }
    return PermissionMatrix(
        bundle_version=str(bundle.version),
        roles=row_roles,
        tools=tuple(effect_classes),
        effect_classes=effect_classes,
        cells=cells,
    )


def _named_entities(policy_set: cedarpy.PolicySet) -> dict[str, set[str]]:
    """Entity ids named anywhere in the policies, by entity type."""
    named: dict[str, set[str]] = {}
    for entity_uid in pst.entity_uids(policy_set.to_pst().static_policies):
        named.setdefault(str(entity_uid.type), set()).add(entity_uid.id)
    return named


@dataclass(frozen=True)
class _Applicable:
    info: PolicyInfo
    condition: _render.Expr

    @property
    def unconditional(self) -> bool:
        return _render.is_value(self.condition, True)

    def describe(self) -> str:
        info = self.info
        effect = (
            f"permit with approval by {info.approval_role}" if info.approval_role else info.effect
        )
        if self.unconditional:
            return f"{info.id}: {effect}"
        return f"{info.id}: {effect} when {_render.render(self.condition)}"


def _cell(
    policy_set: cedarpy.PolicySet,
    infos: Mapping[str, PolicyInfo],
    role: str,
    tool: str,
    effect_class: str | None,
) -> MatrixCell:
    principal = Principal(agent=MATRIX_AGENT, role=role, tenant="")
    entities: list[CedarJSON] = [
        principal_entity(principal, tenant=_UNKNOWN_TENANT),
        action_entity(tool, effect_class),
    ]
    # Partial evaluation takes entity uids as Cedar text; resource and context stay unknown.
    request: dict[str, str | None] = {
        "principal": _render.entity(principal_uid(principal)),
        "action": _render.entity(action_uid(tool)),
    }
    result = cedarpy.is_authorized_partial(request, policy_set, dumps(entities))
    if result.diagnostics.errors:
        return _error_cell(result.diagnostics.errors, infos)
    applicable = [
        _Applicable(infos[policy_id], condition)
        for policy_id, residual in result.residuals.items()
        if not _render.is_value(condition := _residual_condition(residual), False)
    ]
    order = {policy_id: n for n, policy_id in enumerate(infos)}
    applicable.sort(key=lambda a: order[a.info.id])
    return _classify(applicable)


def _error_cell(errors: Sequence[str], infos: Mapping[str, PolicyInfo]) -> MatrixCell:
    failing = {split_error(error, infos)[0] for error in errors} - {None}
    return MatrixCell(
        kind=CellKind.DENIED,
        policy_ids=tuple(p for p in infos if p in failing),
        errors=tuple(errors),
    )


def _classify(applicable: list[_Applicable]) -> MatrixCell:
    forbids = [a for a in applicable if a.info.effect == "forbid"]
    permits = [a for a in applicable if a.info.effect == "permit"]
    certain_forbids = [a for a in forbids if a.unconditional]
    if certain_forbids:
        return MatrixCell(CellKind.DENIED, policy_ids=_ids(certain_forbids))
    if not permits:
        return MatrixCell(CellKind.DENIED)
    if not forbids:
        certain = [a for a in permits if a.unconditional]
        plain = [a for a in certain if a.info.approval_role is None]
        if plain:
            return MatrixCell(CellKind.ALLOWED, policy_ids=_ids(plain))
        if len(certain) == len(permits):
            return MatrixCell(
                CellKind.NEEDS_APPROVAL, approval_roles=_roles(certain), policy_ids=_ids(certain)
            )
    return MatrixCell(
        CellKind.CONDITIONAL,
        approval_roles=_roles(permits),
        conditions=tuple(a.describe() for a in applicable),
        policy_ids=_ids(applicable),
    )


def _ids(applicable: list[_Applicable]) -> tuple[str, ...]:
    return tuple(a.info.id for a in applicable)


def _roles(applicable: list[_Applicable]) -> tuple[str, ...]:
    return tuple(sorted({a.info.approval_role for a in applicable if a.info.approval_role}))


def _residual_condition(residual: Mapping[str, Any]) -> _render.Expr:
    """A residual policy's scope and conditions as one simplified expression."""
    parts: list[_render.Expr] = [
        condition
        for variable in ("principal", "action", "resource")
        if (condition := _scope_condition(variable, residual[variable])) is not None
    ]
    for clause in residual.get("conditions", []):
        body: _render.Expr = clause["body"]
        parts.append(body if clause["kind"] == "when" else {"!": {"arg": body}})
    return _render.simplify(_render.conjunction(parts))


def _scope_condition(variable: str, scope: Mapping[str, Any]) -> _render.Expr | None:
    """A scope constraint such as ``principal in Role::"agent"`` as an expression."""
    op = scope["op"]
    var: _render.Expr = {"Var": variable}
    if op == "All":
        return None
    if op in ("==", "in") and "entity" in scope:
        return {op: {"left": var, "right": {"Value": {"__entity": scope["entity"]}}}}
    if op == "in" and "entities" in scope:
        entities = [{"Value": {"__entity": uid}} for uid in scope["entities"]]
        return {"in": {"left": var, "right": {"Set": entities}}}
    if op == "is":
        condition: dict[str, Any] = {"left": var, "entity_type": scope["entity_type"]}
        if "in" in scope:
            condition["in"] = {"Value": {"__entity": scope["in"]["entity"]}}
        return {"is": condition}
    raise ValueError(f"a scope residual policies do not have: {json.dumps(scope)}")
