"""Which policies can apply to an agent and a tool, judged from their scopes alone.

proctor builds the whole entity hierarchy Cedar sees for the principal and the
action: ``Agent::"<agent>"`` is in ``Role::"<role>"`` and nothing else;
``Action::"<tool>"`` is in ``Action::"<effect class>"`` and nothing else. So a
policy's principal and action scopes can be decided before any call, exactly,
and a policy whose scope cannot match is left out of the set Cedar evaluates:
Cedar would find its scope false and skip its conditions anyway.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proctor.policy.decision import Principal

Uid = tuple[str, str]


def can_apply(
    policy: Mapping[str, Any], principal: Principal, tool: str, effect_class: str | None
) -> bool:
    """False only when the policy's scope rules out this principal and action."""
    agent: Uid = ("Agent", principal.agent)
    principals = {agent, ("Role", principal.role)}
    actions: set[Uid] = {("Action", tool)}
    if effect_class is not None:
        actions.add(("Action", effect_class))
    return _principal_matches(policy["principal"], agent, principals) and _action_matches(
        policy["action"], ("Action", tool), actions
    )


def _principal_matches(scope: Mapping[str, Any], agent: Uid, ancestors: set[Uid]) -> bool:
    op = scope["op"]
    if op == "==":
        return _uid(scope["entity"]) == agent
    if op == "in":
        return _uid(scope["entity"]) in ancestors
    if op == "is":
        inside = scope.get("in")
        return scope["entity_type"] == agent[0] and (
            inside is None or _uid(inside["entity"]) in ancestors
        )
    return True


def _action_matches(scope: Mapping[str, Any], action: Uid, ancestors: set[Uid]) -> bool:
    op = scope["op"]
    if op == "==":
        return _uid(scope["entity"]) == action
    if op == "in":
        entities = scope["entities"] if "entities" in scope else [scope["entity"]]
        return any(_uid(entity) in ancestors for entity in entities)
    return True


def _uid(entity: Mapping[str, Any]) -> Uid:
    inner = entity.get("__entity", entity)
    return str(inner["type"]), str(inner["id"])
