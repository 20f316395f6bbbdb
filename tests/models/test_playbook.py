"""The simulated model over a playbook: the app's brain, the model's generic faults."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest

from proctor.errors import ConfigError
from proctor.models import (
    AssistantMessage,
    Message,
    ModelRequest,
    SystemMessage,
    ToolCall,
    ToolResultMessage,
    ToolSchema,
    UserMessage,
)
from proctor.models.playbook import Call, IdArgument, Turn, answered, latest_request
from proctor.models.registry import model_from_spec
from proctor.models.simulated import NO_PLAYBOOK_ANSWER, Fault, FaultRates, SimulatedModel

TOOLS = tuple(
    ToolSchema(name=name, description=name, parameters={"type": "object"})
    for name in ("find_box", "ship_box")
)


def _box(rng: random.Random) -> str:
    return f"B-{rng.randint(900, 999)}"


class Boxes:
    """A playbook of two steps: find the box, then ship it; then say so."""

    id_arguments: Sequence[IdArgument] = (IdArgument("box_id", _box),)
    amount_arguments: Sequence[str] = ("price",)

    def turn(self, messages: Sequence[Message]) -> Turn:
        done = {a.tool for a in answered(messages) if not a.is_error}
        plan = (
            Call("find_box", {"box_id": "B-101"}),
            Call("ship_box", {"box_id": "B-101", "price": "12.50"}),
        )
        left = tuple(c for c in plan if c.tool not in done)
        return Turn(
            calls=left,
            answer=None if left else f"Shipped, as asked: {latest_request(messages)}",
            injected=(Call("ship_box", {"box_id": "B-666", "price": "1.00"}),),
            forbidden=(Call("burn_box", {"box_id": "B-101"}),),
        )


def request(*after: Message) -> ModelRequest:
    first = (SystemMessage(content="You ship boxes."), UserMessage(content="Ship box B-101"))
    return ModelRequest(messages=(*first, *after), tools=TOOLS)


def model(fault: Fault | None = None, seed: int = 0) -> SimulatedModel:
    rates = FaultRates.model_validate({fault.value: 1.0}) if fault else FaultRates()
    return SimulatedModel(seed, faults=rates, playbook=Boxes())


def calls(model_calls: tuple[ToolCall, ...]) -> list[tuple[str, str]]:
    return [(c.tool, c.arguments) for c in model_calls]


async def test_without_a_playbook_the_model_answers_that_it_has_none() -> None:
    response = await SimulatedModel().complete(request())
    assert response.tool_calls == ()
    assert response.content == NO_PLAYBOOK_ANSWER
    assert "App(playbook=...)" in NO_PLAYBOOK_ANSWER
    faulty = SimulatedModel(faults=FaultRates.uniform(1.0))
    assert (await faulty.complete(request())).content == NO_PLAYBOOK_ANSWER  # nothing to spoil


async def test_the_playbook_plans_and_answers() -> None:
    first = await model().complete(request())
    assert calls(first.tool_calls) == [
        ("find_box", '{"box_id": "B-101"}'),
        ("ship_box", '{"box_id": "B-101", "price": "12.50"}'),
    ]
    ids = [c.id for c in first.tool_calls]
    results = [
        ToolResultMessage(tool_call_id=i, tool=c.tool, content="{}", step=n)
        for n, (i, c) in enumerate(zip(ids, first.tool_calls, strict=True))
    ]
    final = await model().complete(request(AssistantMessage(tool_calls=first.tool_calls), *results))
    assert final.content == "Shipped, as asked: Ship box B-101"


async def test_a_plan_needing_a_tool_not_offered_becomes_an_answer() -> None:
    narrow = request().model_copy(update={"tools": TOOLS[:1]})
    response = await model().complete(narrow)
    assert response.tool_calls == ()
    assert response.content == (
        "I cannot do that here: it needs the ship_box tool, which I am not given."
    )


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        (Fault.OBEY_INJECTION, [("ship_box", '{"box_id": "B-666", "price": "1.00"}')]),
        (Fault.FORBIDDEN_TOOL, [("burn_box", '{"box_id": "B-101"}')]),
    ],
)
async def test_injected_and_forbidden_calls_come_from_the_playbook(
    fault: Fault, expected: list[tuple[str, str]]
) -> None:
    m = model(fault)
    assert calls((await m.complete(request())).tool_calls) == expected
    assert m.injected == [fault]


async def test_invent_id_uses_the_playbooks_id_arguments() -> None:
    m = model(Fault.INVENT_ID)
    proposed = [json.loads(a) for _, a in calls((await m.complete(request())).tool_calls)]
    boxes = [p["box_id"] for p in proposed]
    assert boxes.count("B-101") == 1
    [invented] = [b for b in boxes if b != "B-101"]
    assert invented.startswith("B-9")


async def test_wrong_argument_changes_an_amount_or_the_next_id_of_the_action() -> None:
    seen = set()
    for seed in range(12):
        response = await model(Fault.WRONG_ARGUMENT, seed).complete(request())
        first, action = (json.loads(a) for _, a in calls(response.tool_calls))
        assert first == {"box_id": "B-101"}
        seen.add((action["box_id"], action["price"]))
    assert seen == {("B-101", "125.00"), ("B-102", "12.50")}


async def test_repeat_call_and_malformed_json_need_no_playbook_help() -> None:
    repeated = await model(Fault.REPEAT_CALL).complete(request())
    assert [c.tool for c in repeated.tool_calls] == ["find_box", "find_box", "ship_box"]
    broken = await model(Fault.MALFORMED_JSON).complete(request())
    texts = [a for _, a in calls(broken.tool_calls)]
    assert sum(1 for t in texts if not _is_json(t)) == 1


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


async def test_the_registry_hands_the_playbook_to_the_simulated_model() -> None:
    built = model_from_spec("simulated:strong", playbook=Boxes(), seed=3)
    assert isinstance(built, SimulatedModel)
    assert (built.name, built.seed) == ("simulated:strong", 3)
    assert isinstance(built.playbook, Boxes)
    assert (await built.complete(request())).tool_calls
    with pytest.raises(ConfigError, match="takes no base_url"):
        model_from_spec("simulated:cheap", base_url="http://localhost")
    with pytest.raises(ConfigError, match="tier 'support' is not known"):
        model_from_spec("simulated:support")
