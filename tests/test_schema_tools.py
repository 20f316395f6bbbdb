"""Tools described by a JSON Schema are validated as strictly as decorated functions, and
governed the same way."""

from __future__ import annotations

from typing import Any

import pytest

from proctor import CallStatus, InvalidAction
from proctor.errors import ToolDefinitionError
from proctor.testing import TestEnvironment
from proctor.tools import Effect, Tool, ToolContext, Trust

REFUND_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "order_id": {"type": "string", "pattern": "^A-[0-9]+$"},
        "amount": {"type": "number", "exclusiveMinimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD"], "default": "EUR"},
        "note": {"type": "string"},
    },
    "required": ["order_id", "amount"],
}

POLICY = """
@id("small-refunds")
permit(principal, action == Action::"issue-refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("100.0")) && context.args.currency == "EUR" };
"""


def refund_tool(received: list[dict[str, Any]]) -> Tool:
    def issue(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        received.append({"args": args, "key": ctx.idempotency_key})
        return {"refunded": args["amount"]}

    return Tool.from_schema(
        "issue-refund", "Refund an order.", REFUND_SCHEMA, issue, effect=Effect.IRREVERSIBLE
    )


@pytest.mark.parametrize(
    ("raw", "field", "says"),
    [
        ('{"order_id": 7, "amount": 5}', "order_id", "7 is not of type 'string'"),
        ('{"order_id": "B-1", "amount": 5}', "order_id", "does not match"),
        ('{"order_id": "A-1"}', "amount", "field 'amount' is required (expected number)"),
        ('{"order_id": "A-1", "amount": 5, "to": "x"}', "to", "'to' is not an argument"),
        ('{"order_id": "A-1", "amount": 5, "currency": "GBP"}', "currency", "is not one of"),
        ('{"order_id": "A-1", "amount": 0}', "amount", "less than or equal to the minimum"),
        ('{"order_id": "A-1", "amount": 1.00001}', "amount", "at most 4 decimal places"),
        ('["A-1", 5]', "(arguments)", "must be a JSON object, got an array"),
        ('{"order_id": "A-1", ', "(arguments)", "not valid JSON"),
    ],
)
def test_a_call_that_does_not_fit_the_schema_names_the_field(
    raw: str, field: str, says: str
) -> None:
    t = refund_tool([])
    with pytest.raises(InvalidAction) as caught:
        t.validate_json(raw)
    assert caught.value.field == field
    assert says in str(caught.value)
    assert "issue-refund takes: order_id: string, amount: number, currency?: string" in str(
        caught.value
    )


def test_defaults_are_filled_in_and_absent_options_stay_absent() -> None:
    parsed = refund_tool([]).validate({"order_id": "A-1", "amount": 5})
    assert parsed.model_dump() == {"order_id": "A-1", "amount": 5, "currency": "EUR"}


def test_names_pydantic_reserves_or_no_identifier_are_kept_as_given() -> None:
    schema = {
        "type": "object",
        "properties": {"json": {"type": "string"}, "model_id": {"type": "integer"}, "x-y": {}},
    }
    t = Tool.from_schema("odd", "", schema, lambda a: a, effect=Effect.READ)
    given = {"json": "j", "model_id": 3, "x-y": [1]}
    assert t.validate(given).model_dump() == given


def test_a_schema_that_allows_more_lets_more_through() -> None:
    schema = {
        "type": "object",
        "properties": {"q": {"type": "string"}},
        "additionalProperties": {"type": "integer"},
    }
    t = Tool.from_schema("search", "", schema, lambda a: a, effect=Effect.READ)
    assert t.validate({"q": "x", "limit": 3}).model_dump() == {"q": "x", "limit": 3}
    with pytest.raises(InvalidAction, match="'limit': 'many' is not of type 'integer'"):
        t.validate({"q": "x", "limit": "many"})


@pytest.mark.parametrize(
    ("schema", "declared", "says"),
    [
        ({"type": "array"}, {}, "must describe a JSON object"),
        ({"type": "object", "properties": {"a": {"type": "strng"}}}, {}, "not a valid JSON Schema"),
        (REFUND_SCHEMA, {"sinks": ["to"]}, "sinks to are not arguments of it"),
        (REFUND_SCHEMA, {"trust": "maybe"}, "'maybe' is not a valid Trust"),
        (REFUND_SCHEMA, {"colour": "red"}, "unexpected keyword argument 'colour'"),
    ],
)
def test_a_tool_declared_wrongly_is_refused_when_built(
    schema: dict[str, Any], declared: dict[str, Any], says: str
) -> None:
    with pytest.raises(ToolDefinitionError, match=says):
        Tool.from_schema("t", "", schema, lambda a: a, effect=Effect.WRITE, **declared)


@pytest.mark.parametrize("name", ["write", "no spaces", "", "é"])
def test_tool_names_policies_can_use(name: str) -> None:
    with pytest.raises(ToolDefinitionError, match="tool name"):
        Tool.from_schema(name, "", {"type": "object"}, lambda a: a, effect=Effect.WRITE)


def test_declarations_are_kept_and_count_in_the_tools_version() -> None:
    t = Tool.from_schema(
        "github.create-issue",
        "Open an issue.",
        {"type": "object", "properties": {"repo": {"type": "string"}}},
        lambda a: a,
        effect="write",
        trust="untrusted",
        targets=["repo"],
    )
    assert (t.effect, t.trust, t.targets, t.idempotent) == (
        Effect.WRITE,
        Trust.UNTRUSTED,
        {"repo"},
        False,
    )
    assert t.declaration()["schema"]["properties"] == {"repo": {"type": "string"}}


async def test_a_schema_tool_is_governed_like_any_other() -> None:
    received: list[dict[str, Any]] = []
    async with TestEnvironment(POLICY, tools=[refund_tool(received)]) as env:
        run = await env.start_run()
        small = await run.call_json("issue-refund", '{"order_id": "A-1", "amount": 20.5}')
        large = await run.call("issue-refund", {"order_id": "A-1", "amount": 500})
        dollars = await run.call(
            "issue-refund", {"order_id": "A-1", "amount": 5, "currency": "USD"}
        )
        with pytest.raises(InvalidAction):
            await run.call("issue-refund", {"order_id": "A-1", "amount": "5"})
        assert small.status is CallStatus.EXECUTED
        assert small.result == {"refunded": 20.5}
        assert large.status is CallStatus.DENIED
        assert dollars.status is CallStatus.DENIED
        assert received == [
            {
                "args": {"order_id": "A-1", "amount": 20.5, "currency": "EUR"},
                "key": received[0]["key"],
            }
        ]
        assert env.runtime.verify_audit().ok
