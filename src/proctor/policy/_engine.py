"""Deciding one request with Cedar, and reading Cedar's answer as a ``Decision``.

Cedar answers allow or deny; proctor's three effects come from which policies
were satisfied. Forbid wins. A satisfied permit without ``@approval`` allows.
Satisfied permits that all carry ``@approval`` require one of their roles.
Nothing satisfied denies. Cedar skips a policy whose evaluation fails; proctor
does not: any evaluation error denies, so a broken forbid never opens a door.

The hot path avoids repeated work. For each (tool, effect class, principal)
the agent and action entities are parsed once, and the policies whose scopes
can match are parsed once into their own set (see ``_scope``); both are kept in
bounded caches. Only the resource entity and the context are built per call,
and only with the values the policies read (see ``_footprint``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import cedarpy

from proctor.policy._cedar import (
    CedarJSON,
    action_entity,
    action_uid,
    dumps,
    principal_entity,
    principal_uid,
    resource_uid,
)
from proctor.policy._footprint import Footprint
from proctor.policy._scope import can_apply
from proctor.policy.decision import Decision, DecisionEffect, PolicyRequest, Principal
from proctor.policy.policies import ParsedPolicy, PolicyInfo

ENTITY_CACHE_SIZE = 4096
"""(tool, effect class, principal) combinations whose entities are kept parsed."""
SUBSET_CACHE_SIZE = 1024
"""Distinct sets of applicable policies kept parsed."""
_EVAL_ERROR_PREFIX = "error while evaluating policy `"


_Base = tuple[cedarpy.PolicySet | None, cedarpy.Entities, dict[str, str], dict[str, str]]
"""For one (tool, effect class, principal): the policies that can apply (``None`` when
none can), the parsed agent and action entities, and the principal and action uids."""


class Engine:
    """A parsed policy set and the bookkeeping to turn Cedar's answers into decisions."""

    def __init__(self, policies: Sequence[ParsedPolicy], bundle_version: str) -> None:
        self.bundle_version = bundle_version
        self.policy_set = cedarpy.PolicySet.from_json_str(policy_set_json(policies))
        self.policies: Mapping[str, PolicyInfo] = {p.info.id: p.info for p in policies}
        self._parsed = {p.info.id: p for p in policies}
        self._subset = lru_cache(maxsize=SUBSET_CACHE_SIZE)(self._build_subset)
        self._order = {policy_id: n for n, policy_id in enumerate(self.policies)}
        self.footprint = Footprint.of(
            clause["body"] for policy in policies for clause in policy.est.get("conditions", [])
        )
        self._base = lru_cache(maxsize=ENTITY_CACHE_SIZE)(self._build_base)

    def decide(self, request: PolicyRequest) -> Decision:
        started = time.perf_counter_ns()
        try:
            policy_set, entities, principal, action = self._base(
                request.tool, request.effect_class, request.principal
            )
            if policy_set is None:
                return self._default_deny(started, request.tool)
            if request.resource is not None:
                resource = self.footprint.resource_entity(request.resource)
                if resource is not None:
                    entities = entities.with_added_json_str(dumps([resource]))
            cedar_request: dict[str, Any] = {
                "principal": principal,
                "action": action,
                "resource": resource_uid(request),
                "context": self.footprint.context_json(request),
            }
            result = cedarpy.is_authorized(cedar_request, policy_set, entities)
        except ValueError as exc:
            message = str(exc)
            return self._decision(
                started,
                DecisionEffect.DENY,
                reason=f"evaluation error: {message}",
                errors=(message,),
            )
        return self._interpret(result, request.tool, started)

    def _build_base(self, tool: str, effect_class: str, principal: Principal) -> _Base:
        entities: list[CedarJSON] = [action_entity(tool, effect_class), principal_entity(principal)]
        applicable = tuple(
            policy_id
            for policy_id, policy in self._parsed.items()
            if can_apply(policy.est, principal, tool, effect_class)
        )
        return (
            self._subset(applicable) if applicable else None,
            cedarpy.Entities.from_json_str(dumps(entities)),
            principal_uid(principal),
            action_uid(tool),
        )

    def _build_subset(self, policy_ids: tuple[str, ...]) -> cedarpy.PolicySet:
        if len(policy_ids) == len(self._parsed):
            return self.policy_set
        return cedarpy.PolicySet.from_json_str(
            policy_set_json([self._parsed[policy_id] for policy_id in policy_ids])
        )

    def _interpret(self, result: cedarpy.AuthzResult, tool: str, started: int) -> Decision:
        diagnostics = result.diagnostics
        errors = tuple(diagnostics.errors)
        satisfied = self.in_bundle_order(diagnostics.reasons)
        allowed = result.allowed
        if satisfied and not allowed:
            return self._decision(
                started,
                DecisionEffect.DENY,
                policy_ids=satisfied,
                reason=f"forbidden by {', '.join(satisfied)}",
                errors=errors,
            )
        if errors:
            return self._error_decision(started, errors)
        if not allowed:
            return self._default_deny(started, tool)
        plain = tuple(p for p in satisfied if self.policies[p].approval_role is None)
        if plain:
            return self._decision(
                started,
                DecisionEffect.ALLOW,
                policy_ids=plain,
                reason=f"permitted by {', '.join(plain)}",
            )
        roles = tuple(sorted({self.policies[p].approval_role or "" for p in satisfied}))
        return self._decision(
            started,
            DecisionEffect.REQUIRE_APPROVAL,
            approval_roles=roles,
            policy_ids=satisfied,
            reason=f"needs approval by {' or '.join(roles)} ({', '.join(satisfied)})",
        )

    def _default_deny(self, started: int, tool: str) -> Decision:
        return self._decision(
            started, DecisionEffect.DENY, reason=f"default deny: no policy permits {tool}"
        )

    def _error_decision(self, started: int, errors: tuple[str, ...]) -> Decision:
        failing = self.in_bundle_order(
            policy_id
            for policy_id, _ in (split_error(e, self.policies) for e in errors)
            if policy_id is not None
        )
        policy_id, detail = split_error(errors[0], self.policies)
        where = f" in policy {policy_id}" if policy_id is not None else ""
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return self._decision(
            started,
            DecisionEffect.DENY,
            policy_ids=failing,
            reason=f"evaluation error{where}: {detail}{more}",
            errors=errors,
        )

    def in_bundle_order(self, policy_ids: Iterable[str]) -> tuple[str, ...]:
        unique = set(policy_ids)
        if len(unique) < 2:
            return tuple(unique)
        return tuple(sorted(unique, key=lambda p: self._order.get(p, len(self._order))))

    def _decision(
        self,
        started: int,
        effect: DecisionEffect,
        *,
        reason: str,
        approval_roles: tuple[str, ...] = (),
        policy_ids: tuple[str, ...] = (),
        errors: tuple[str, ...] = (),
    ) -> Decision:
        return Decision(
            effect=effect,
            approval_roles=approval_roles,
            policy_ids=policy_ids,
            bundle_version=self.bundle_version,
            latency_us=(time.perf_counter_ns() - started) / 1000,
            errors=errors,
            reason=reason,
        )


def split_error(error: str, policy_ids: Iterable[str]) -> tuple[str | None, str]:
    """``(policy id, detail)`` of a Cedar evaluation error; the id is None if none is named."""
    if error.startswith(_EVAL_ERROR_PREFIX):
        rest = error[len(_EVAL_ERROR_PREFIX) :]
        for policy_id in policy_ids:
            if rest.startswith(f"{policy_id}`: "):
                return policy_id, rest[len(policy_id) + 3 :]
    return None, error


def policy_set_json(policies: Sequence[ParsedPolicy]) -> str:
    """The Cedar JSON policy set with each policy under its proctor id."""
    document = {
        "staticPolicies": {policy.info.id: policy.est for policy in policies},
        "templates": {},
        "templateLinks": [],
    }
    return json.dumps(document)
