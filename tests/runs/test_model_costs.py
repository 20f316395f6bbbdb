"""Model calls are paid for before they are made: run caps and daily budgets fail closed."""

from __future__ import annotations

from decimal import Decimal

import pytest

from proctor import BudgetExceeded, ConfigError, RunState
from proctor.budgets import nano_usd
from proctor.models import ModelRequest, ModelResponse, TokenUsage, UserMessage
from proctor.models.pricing import Price, PriceTable
from proctor.testing import FunctionModel
from tests.shop import Env

REQUEST = ModelRequest(
    messages=(UserMessage(content="Where is order A-1?"),), max_output_tokens=200
)
USAGE = TokenUsage(
    input_tokens=1000, cached_input_tokens=500, output_tokens=100, reasoning_tokens=50
)


def answer(_: ModelRequest) -> ModelResponse:
    return ModelResponse(model="gpt-4o-mini-2024-07-18", content="It shipped.", usage=USAGE)


def test_cached_input_and_reasoning_are_priced_as_they_are_billed() -> None:
    table = PriceTable()
    # gpt-4o-mini: $0.15 input, $0.075 cached input, $0.60 output per million tokens.
    expected = (1000 * Decimal("0.15") + 500 * Decimal("0.075") + 150 * Decimal("0.60")) / 10**6
    assert table.cost("openai:gpt-4o-mini", USAGE) == expected
    assert table.price("openai:gpt-4o-mini-2024-07-18") == table.price("openai:gpt-4o-mini")


def test_a_model_without_a_price_is_never_called() -> None:
    with pytest.raises(ConfigError, match="Add it under `prices:`"):
        PriceTable().price("openai:mystery-model")
    table = PriceTable({"openai:mystery-model": Price(input=1, cached_input=1, output=2)})
    assert table.price("openai:mystery-model").output == 2


async def test_a_runs_cost_is_the_sum_of_its_model_calls(env: Env) -> None:
    rt = env.runtime()
    model = FunctionModel(answer, name="openai:gpt-4o-mini")
    run = await rt.start_run(env.spec())
    for _ in range(3):
        await run.ask(model, REQUEST)
    one = rt.prices.cost("openai:gpt-4o-mini", USAGE)
    assert run.usage.usd == 3 * one
    assert run.usage.model_tokens == 3 * USAGE.total
    day = env.clock.now().date().isoformat()
    assert rt.ledger.usage("tenant:acme", day) == (
        Decimal(3 * nano_usd(one, round_up=True)) / 10**9,  # whole billionths, rounded up
        3 * USAGE.total,
    )


async def test_a_call_whose_worst_case_crosses_the_run_cap_is_not_made(env: Env) -> None:
    model = FunctionModel(answer, name="openai:gpt-4o")
    run = await env.runtime().start_run(env.spec(budget={"usd": "0.001"}))
    with pytest.raises(BudgetExceeded, match="before a model call"):
        await run.ask(model, REQUEST.model_copy(update={"max_output_tokens": 4000}))
    assert model.requests == []
    assert run.state is RunState.FAILED_SAFE
    assert run.reason == "budget_exceeded"


async def test_a_tenant_budget_holds_across_runs(env: Env) -> None:
    yaml = env.bundle / "proctor.yaml"
    yaml.write_text(yaml.read_text() + "budgets:\n  tenant:\n    acme:\n      usd: '0.0006'\n")
    rt = env.runtime()
    model = FunctionModel(answer, name="openai:gpt-4o-mini")
    first = await rt.start_run(env.spec())
    await first.ask(model, REQUEST)  # about $0.00028 of the day's $0.0006
    await first.complete()
    second = await env.runtime().start_run(env.spec())
    await second.ask(model, REQUEST)  # still fits: worst case about $0.00013
    third = await env.runtime().start_run(env.spec())
    with pytest.raises(BudgetExceeded, match="the tenant budget of acme"):
        await third.ask(model, REQUEST)
    assert len(model.requests) == 2  # the third call was never made
    assert third.state is RunState.FAILED_SAFE
    other = await env.runtime().start_run(env.spec(tenant="globex"))
    await other.ask(model, REQUEST)  # another tenant's budget is its own


async def test_a_failed_model_call_releases_its_reservation(env: Env) -> None:
    from proctor.errors import ModelError

    def down(_: ModelRequest) -> ModelResponse:
        raise ModelError("provider unavailable", retryable=True, status=503)

    rt = env.runtime()
    run = await rt.start_run(env.spec())
    with pytest.raises(ModelError):
        await run.ask(FunctionModel(down, name="openai:gpt-4o-mini"), REQUEST)
    with rt.store.read() as conn:
        reserved = conn.exec_driver_sql("SELECT sum(nano_usd_reserved) FROM budget_usage").scalar()
    assert reserved == 0
