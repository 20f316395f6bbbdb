"""Cedar expressions printed from Cedar's JSON form read back as the same expression."""

from __future__ import annotations

import json
from typing import Any

import cedarpy
import pytest

from proctor.policy._render import render, simplify


def condition(text: str) -> Any:
    policy = f"permit(principal, action, resource) when {{ {text} }};"
    document = json.loads(cedarpy.policies_to_json_str(policy))
    return document["staticPolicies"]["policy0"]["conditions"][0]["body"]


@pytest.mark.parametrize(
    "text",
    [
        'context.a.b == "x\\"y\\n"',
        "(1 + 2) * 3",
        "1 + 2 * 3",
        "1 - (2 - 3)",
        "1 - 2 - 3",
        "-(1 + 2)",
        "!(context.a || context.b)",
        "context.a || context.b && context.c",
        "(context.a || context.b) && context.c",
        "(context.a == 1) == true",
        "if context.a then 1 else 2",
        "(if context.a then 1 else 2) + 1",
        '[1, "a", true].contains(2)',
        '{a: 1, "b c": 2}.a == 1',
        'context["odd key"] == 1',
        'context has "odd key"',
        "context has args",
        'resource is Order in Shop::"s"',
        'principal in [Role::"a", Role::"b"]',
        'context.s like "a*b\\*"',
        'context.d.lessThan(decimal("1.0"))',
        'ip("10.0.0.1").isInRange(ip("10.0.0.0/8"))',
        "context.x.isEmpty()",
        'resource.getTag("t") == 1',
        'resource.hasTag("t")',
        "context.list.containsAll([1])",
        "!!context.a",
        'context.when < datetime("2025-01-01")',
    ],
)
def test_rendered_text_parses_back_to_the_same_expression(text: str) -> None:
    body = condition(text)

    assert condition(render(body)) == body


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ({"&&": {"left": {"Value": True}, "right": {"Var": "context"}}}, "context"),
        ({"||": {"left": {"Var": "context"}, "right": {"Value": False}}}, "context"),
        (
            {".": {"left": {"unknown": [{"Value": "context"}]}, "attr": "args"}},
            "context.args",
        ),
        ({"unknown": [{"Value": "principal.tenant"}]}, "principal.tenant"),
        (
            {"!": {"arg": {"==": {"left": {"Var": "context"}, "right": {"Value": 1}}}}},
            "context != 1",
        ),
        (
            {"!": {"arg": {"<=": {"left": {"Var": "context"}, "right": {"Value": 1}}}}},
            "context > 1",
        ),
        ({"!": {"arg": {"!": {"arg": {"Var": "context"}}}}}, "context"),
        (
            {"if-then-else": {"if": {"Value": True}, "then": {"Value": 1}, "else": {"Value": 2}}},
            "1",
        ),
    ],
)
def test_simplify(expr: Any, text: str) -> None:
    assert render(simplify(expr)) == text
