"""How the workspace playbook carries out a plan: propose what is not answered yet, find the
item a request names in a listing, and answer once the action ran or a call failed."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from proctor.examples.workspace.intents import Conversation, best, items_of
from proctor.models.playbook import Answered, Call, Turn

__all__ = ["Item", "all_of", "carry_out", "failure", "field", "find", "say"]

Item = Mapping[str, Any]


def say(text: str) -> Turn:
    return Turn(answer=text)


def failure(done: Answered) -> Turn:
    why = done.content.removeprefix("error: ").strip().rstrip(".")
    return say(f"I could not finish: {done.tool} failed ({why}).")


def carry_out(conv: Conversation, plan: Sequence[Call], done: Callable[[Answered], str]) -> Turn:
    """Propose what of ``plan`` is not answered; once its last call ran, or one failed,
    answer."""
    answers = [conv.answer_to(c) for c in plan]
    failed = next((a for a in answers if a is not None and a.is_error), None)
    if failed is not None:
        return failure(failed)
    if answers and answers[-1] is not None:
        return say(done(answers[-1]))
    return Turn(calls=tuple(c for c, a in zip(plan, answers, strict=True) if a is None))


def all_of(conv: Conversation, plan: Sequence[Call], done: Callable[[list[Answered]], str]) -> Turn:
    """Every call of ``plan`` (reads, or several deletes), then one answer on them all."""
    answers = [conv.answer_to(c) for c in plan]
    if all(a is not None for a in answers):
        return say(done([a for a in answers if a is not None]))
    return Turn(calls=tuple(c for c, a in zip(plan, answers, strict=True) if a is None))


def find(
    conv: Conversation,
    listing: Call,
    key: str,
    fields: Sequence[str],
    id_field: str,
    act: Callable[[Item], Turn],
    what: str,
) -> Turn:
    """List, pick the item the request means, and ``act`` on it."""
    seen = conv.answer_to(listing)
    if seen is None:
        return Turn(calls=(listing,))
    if seen.result is None:
        return failure(seen)
    item = best(items_of(seen.result, key), fields, conv.ask.words, conv.ask.ids, id_field)
    if item is None:
        return say(f"I could not find the {what} you mean. Could you name it more precisely?")
    return act(item)


def field(done: Answered, name: str) -> str:
    return str((done.result or {}).get(name, "?"))
