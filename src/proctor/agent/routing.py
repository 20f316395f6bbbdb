"""Routing: which intent a request is, and which tier of model serves it.

Rules come from the bundle's ``proctor.yaml`` (``routing:``): the first rule
whose words appear in the request decides the intent and its tier. A ``safe``
tier opens the run in safe mode: the strong model, and under the default
policy every write or irreversible call waits for approval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from proctor.policy.settings import RoutingSettings, Tier


@dataclass(frozen=True)
class Route:
    intent: str
    tier: Tier
    model: str
    """The model spec (``provider:model``) that serves the tier."""
    reason: str


def route(request: str, settings: RoutingSettings) -> Route:
    """Read ``request`` into an intent and a tier, saying which rule decided."""
    text = request.lower()
    for index, rule in enumerate(settings.rules):
        for phrase in rule.match:
            if re.search(rf"\b{re.escape(phrase.lower())}\b", text):
                return Route(
                    rule.intent,
                    rule.tier,
                    settings.models[rule.tier],
                    f"rule {index + 1} ({rule.intent}) matched {phrase!r}",
                )
    tier = settings.default_tier
    return Route(
        settings.default_intent, tier, settings.models[tier], "no rule matched: the default"
    )
