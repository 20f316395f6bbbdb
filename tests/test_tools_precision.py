"""A tool never receives a number the policy did not see: values with more precision or a
larger range than Cedar's ``decimal`` (four places, about ±9.2e14) or ``long`` (64 bits)
are invalid actions, refused at validation, before policy and before the tool."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from proctor import CallStatus, Effect, InvalidAction, RunState, tool
from proctor.testing import TestEnvironment
from tests.shop import Env

POLICY = """
@id("pay-small")
permit(principal, action == Action::"pay", resource)
when { context.args.amount.lessThanOrEqual(decimal("100.00")) };

@id("count-small")
permit(principal, action == Action::"count", resource)
when { context.args.n <= 10 };

@id("rate-small")
permit(principal, action == Action::"rate", resource)
when { context.args.rate.lessThanOrEqual(decimal("1.0")) };

@id("basket")
permit(principal, action == Action::"basket", resource);
"""


class Line(BaseModel):
    sku: str
    price: Decimal


received: list[Any] = []


@tool(effect=Effect.WRITE)
def pay(amount: Decimal) -> str:
    received.append(amount)
    return "paid"


@tool(effect=Effect.WRITE)
def count(n: int) -> str:
    received.append(n)
    return "counted"


@tool(effect=Effect.WRITE)
def rate(rate: float) -> str:
    received.append(rate)
    return "rated"


@tool(effect=Effect.WRITE)
def basket(lines: list[Line], discounts: dict[str, Decimal] | None = None) -> str:
    received.append(lines)
    return "ok"


async def test_the_shop_refund_of_100_00005_is_refused_not_rounded_into_the_permit(
    env: Env,
) -> None:
    run = await env.runtime().start_run(env.spec())
    with pytest.raises(InvalidAction) as caught:
        await run.call("refund", {"order_id": "A-1", "amount": "100.00005"})
    assert caught.value.field == "amount"
    assert "at most 4 decimal places" in str(caught.value)
    assert env.ledger.effects() == []
    assert run.state is RunState.RUNNING
    ok = await run.call("refund", {"order_id": "A-1", "amount": "100.0000"})
    assert ok.status is CallStatus.EXECUTED  # four places is what Cedar holds: fine


@pytest.mark.parametrize(
    ("name", "args", "field", "message"),
    [
        ("pay", {"amount": "100.00005"}, "amount", "at most 4 decimal places"),
        ("pay", {"amount": "0.00001"}, "amount", "at most 4 decimal places"),
        ("pay", {"amount": "-1E-7"}, "amount", "at most 4 decimal places"),
        ("pay", {"amount": "922337203685478"}, "amount", "outside the range"),
        ("pay", {"amount": "-1e20"}, "amount", "outside the range"),
        ("pay", {"amount": "NaN"}, "amount", "finite"),
        ("pay", {"amount": "Infinity"}, "amount", "finite"),
        ("count", {"n": 2**63}, "n", "64-bit"),
        ("count", {"n": -(2**63) - 1}, "n", "64-bit"),
        ("rate", {"rate": 0.00001}, "rate", "at most 4 decimal places"),
        ("rate", {"rate": 1e300}, "rate", "outside the range"),
        (
            "basket",
            {"lines": [{"sku": "a", "price": "1.5"}, {"sku": "b", "price": "0.12345"}]},
            "lines.1.price",
            "at most 4 decimal places",
        ),
        (
            "basket",
            {"lines": [], "discounts": {"spring": "0.000001"}},
            "discounts.spring",
            "at most 4 decimal places",
        ),
    ],
)
async def test_numbers_beyond_the_policy_engine_never_reach_policy_or_tool(
    tmp_path: Path, name: str, args: dict[str, Any], field: str, message: str
) -> None:
    received.clear()
    async with TestEnvironment(POLICY, tools=[pay, count, rate, basket], directory=tmp_path) as env:
        run = await env.start_run()
        with pytest.raises(InvalidAction) as caught:
            await run.call(name, args)
        assert caught.value.tool == name
        assert caught.value.field == field
        assert message in str(caught.value)
        assert received == []
        assert run.steps == [] or all(s.tool != name for s in run.steps)


async def test_the_same_refusal_for_json_as_a_model_writes_it(tmp_path: Path) -> None:
    received.clear()
    async with TestEnvironment(POLICY, tools=[pay, count], directory=tmp_path) as env:
        run = await env.start_run()
        with pytest.raises(InvalidAction, match="at most 4 decimal places"):
            await run.call_json("pay", '{"amount": "100.00001"}')
        with pytest.raises(InvalidAction, match="64-bit"):
            await run.call_json("count", '{"n": 99999999999999999999}')
        assert received == []


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("pay", {"amount": "100.0000"}),
        ("pay", {"amount": "1E+2"}),
        ("pay", {"amount": "922337203685477.5807"}),
        ("pay", {"amount": "-922337203685477.5808"}),
        ("count", {"n": 2**63 - 1}),
        ("count", {"n": -(2**63)}),
        ("rate", {"rate": 0.1}),
        ("rate", {"rate": 0.0001}),
        ("basket", {"lines": [{"sku": "a", "price": "9.9999"}]}),
    ],
)
def test_numbers_the_policy_engine_holds_exactly_are_valid(name: str, args: dict[str, Any]) -> None:
    tools = {t.name: t for t in (pay, count, rate, basket)}
    tools[name].validate(args)  # no InvalidAction
