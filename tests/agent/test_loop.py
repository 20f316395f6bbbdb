"""The agent loop over scripted models: plans checked whole, runs that end or pause safely."""

from __future__ import annotations

from decimal import Decimal

from proctor import Approver, RunState
from proctor.agent import Agent, AgentConfig
from proctor.errors import ModelError
from proctor.models import ModelRequest, ModelResponse, TokenUsage, ToolResultMessage
from proctor.testing import FunctionModel, ScriptedModel, answer, call, call_json, plan
from tests.shop import Env

USAGE = TokenUsage(input_tokens=200, output_tokens=40)


REFUND_20 = {"order_id": "A-1", "amount": "20.00"}


async def test_a_final_answer_completes_the_run(env: Env) -> None:
    model = ScriptedModel([answer("Your order shipped.")], usage=USAGE)
    result = await Agent(env.runtime(), model).run("Where is A-1?", env.spec())
    assert (result.state, result.answer) == (RunState.COMPLETED, "Your order shipped.")
    model.assert_done()


async def test_a_plan_runs_step_by_step_and_results_go_back_to_the_model(env: Env) -> None:
    model = ScriptedModel(
        [plan(call("lookup", order_id="A-1"), call("refund", **REFUND_20)), answer("Done.")],
        usage=USAGE,
    )
    result = await Agent(env.runtime(), model).run("Refund $20 on A-1", env.spec())
    assert result.state is RunState.COMPLETED
    assert [o.status.value for o in result.outcomes] == ["executed", "executed"]
    assert len(env.ledger.effects("refund")) == 1
    results = [m for m in model.requests[1].messages if isinstance(m, ToolResultMessage)]
    assert [(m.tool, m.step) for m in results] == [("lookup", 0), ("refund", 1)]
    assert "20.00" in results[1].content


async def test_a_denied_step_stops_the_whole_plan_before_anything_runs(env: Env) -> None:
    model = ScriptedModel(
        [plan(call("refund", **REFUND_20), call("refund", order_id="A-1", amount="9999.00"))],
        usage=USAGE,
    )
    result = await Agent(env.runtime(), model).run("Refund everything", env.spec())
    assert (result.state, result.reason) == (RunState.HANDED_OFF, "policy_denied")
    assert env.ledger.effects() == []  # the allowed first step never ran


async def test_an_invalid_call_is_repaired_by_the_model(env: Env) -> None:
    model = ScriptedModel(
        [
            call_json("refund", '{"order_id": "A-1", "amount": }'),
            call("refund", **REFUND_20),
            answer("Done."),
        ],
        usage=USAGE,
    )
    result = await Agent(env.runtime(), model).run("Refund $20", env.spec())
    assert result.state is RunState.COMPLETED
    repair = model.requests[1].messages[-1]
    assert isinstance(repair, ToolResultMessage)
    assert repair.is_error
    assert "not valid JSON" in repair.content
    assert len(env.ledger.effects("refund")) == 1


async def test_invalid_calls_past_the_limit_fail_the_run_safe(env: Env) -> None:
    bad = call_json("refund", '{"order_id": 7}')
    model = ScriptedModel([bad, bad, bad], usage=USAGE)
    result = await Agent(env.runtime(), model).run("Refund", env.spec(max_invalid_actions=2))
    assert (result.state, result.reason) == (RunState.FAILED_SAFE, "invalid_actions")
    assert env.ledger.effects() == []


async def test_repeating_a_call_is_a_loop(env: Env) -> None:
    again = call("lookup", order_id="A-1")
    model = ScriptedModel([again, again], usage=USAGE)
    result = await Agent(env.runtime(), model).run("Where is A-1?", env.spec())
    assert (result.state, result.reason) == (RunState.FAILED_SAFE, "loop")


async def test_no_final_answer_within_the_turns_fails_safe(env: Env) -> None:
    turns = [call("note", text=str(i)) for i in range(3)]
    agent = Agent(env.runtime(), ScriptedModel(turns, usage=USAGE), AgentConfig(max_turns=3))
    result = await agent.run("Keep notes", env.spec())
    assert (result.state, result.reason) == (RunState.FAILED_SAFE, "loop")


async def test_a_model_that_gives_no_answer_fails_the_run_safe(env: Env) -> None:
    def down(_: ModelRequest) -> ModelResponse:
        raise ModelError("openai:gpt-4o-mini answered 503 three times", retryable=True)

    result = await Agent(env.runtime(), FunctionModel(down)).run("Hi", env.spec())
    assert (result.state, result.reason) == (RunState.FAILED_SAFE, "model_error")


async def test_a_run_paused_for_approval_resumes_in_another_process_and_completes(
    env: Env,
) -> None:
    big = {"order_id": "A-1", "amount": "500.00"}
    first = ScriptedModel(
        [plan(call("lookup", order_id="A-1"), call("refund", **big))], usage=USAGE
    )
    paused = await Agent(env.runtime(), first).run("Refund $500 on A-1", env.spec())
    assert paused.state is RunState.AWAITING_APPROVAL
    assert paused.approval_id is not None
    assert env.ledger.effects() == []

    env.runtime().approvals.approve(paused.approval_id, Approver("sam", "supervisor"), "ok")
    second = ScriptedModel([answer("Refunded $500.")], usage=USAGE)
    done = await Agent(env.runtime(), second).resume(paused.run_id)
    assert (done.state, done.answer) == (RunState.COMPLETED, "Refunded $500.")
    assert len(env.ledger.effects("refund")) == 1
    seen = [m for m in second.requests[0].messages if isinstance(m, ToolResultMessage)]
    assert [(m.tool, m.step) for m in seen] == [("lookup", 0), ("refund", 1)]
    second.assert_done()


async def test_the_model_budget_stops_the_loop_before_the_call(env: Env) -> None:
    model = ScriptedModel([answer("Done.")], name="openai:gpt-4o", usage=USAGE)
    agent = Agent(env.runtime(), model, AgentConfig(max_output_tokens=4000))
    result = await agent.run("Hi", env.spec(budget={"usd": "0.01"}))
    assert (result.state, result.reason) == (RunState.FAILED_SAFE, "budget_exceeded")
    assert model.requests == []


async def test_a_runs_cost_is_the_sum_of_its_recorded_model_calls(env: Env) -> None:
    import sqlalchemy as sa

    from proctor.budgets import NANO
    from proctor.store.tables import model_calls

    model = ScriptedModel([call("lookup", order_id="A-1"), answer("Shipped.")], usage=USAGE)
    rt = env.runtime()
    result = await Agent(rt, model).run("Where is A-1?", env.spec())
    with rt.store.read() as conn:
        rows = conn.execute(
            sa.select(model_calls).where(model_calls.c.run_id == result.run_id)
        ).all()
    assert len(rows) == 2
    assert sum(r.input_tokens + r.output_tokens for r in rows) == result.model_tokens
    one = rt.prices.cost(model.name, USAGE)
    assert result.cost_usd == 2 * one
    assert all(r.nano_usd <= r.reserved_nano_usd for r in rows)  # never above the reservation
    assert abs(sum(r.nano_usd for r in rows) / NANO - result.cost_usd) < Decimal("0.000000002")


async def test_the_models_first_answer_is_the_runs_plan_and_stays_it_after_a_resume(
    env: Env,
) -> None:
    import sqlalchemy as sa

    from proctor.runs.views import load_run
    from proctor.store.tables import audit_entries

    big = {"order_id": "A-1", "amount": "500.00"}
    first = ScriptedModel(
        [plan(call("lookup", order_id="A-1"), call("refund", **big))], usage=USAGE
    )
    paused = await Agent(env.runtime(), first).run("Refund $500 on A-1", env.spec())
    env.runtime().approvals.approve(paused.approval_id or "", Approver("sam", "supervisor"), "ok")
    second = ScriptedModel([call("lookup", order_id="A-2"), answer("Done.")], usage=USAGE)
    done = await Agent(env.runtime(), second).resume(paused.run_id)
    assert done.state is RunState.COMPLETED

    rt = env.runtime()
    with rt.store.read() as conn:
        planned_entries = conn.execute(
            sa.select(sa.func.count()).where(
                audit_entries.c.run_id == paused.run_id, audit_entries.c.kind == "run.planned"
            )
        ).scalar_one()
        steps = load_run(conn, paused.run_id).steps
    assert planned_entries == 1  # committed when the run started, kept across the resume
    plans = [
        s.decision.inputs["context"]["plan"] for s in steps if s.decision and s.decision.inputs
    ]
    assert [(p["in_plan"], p["args_match"]) for p in plans] == [
        (True, True),  # lookup A-1, as planned
        (True, True),  # the refund, as planned (then approved)
        (True, False),  # lookup A-2: a planned tool, other arguments
    ]
