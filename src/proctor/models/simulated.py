"""``simulated``: the offline default model, a seeded stand-in for an LLM serving support.

It reads the conversation as a careful support agent would (the rules are in
``proctor.models._support_intents``): the latest trusted request, the intent it
states (an order's status, a refund, a ticket, an email change, a GDPR erasure,
an email to send or draft, an escalation) and the tool results since. It plans
the calls the request gives the arguments for at once, a look-up first and the
action after it; a call that needs a result comes the turn after that result; a
call the runtime rejected as invalid is proposed again, repaired; once the
action ran, or a call failed in its tool, it answers in plain text.

Deterministic: the same seed and the same request give the same response,
whatever was asked before. Each answer draws from its own random generator,
seeded with the model's name, the seed and a digest of the request; no global
random state, no clock. Usage is estimated from text length and latency is
derived from the tokens, never measured.

Faults. ``FaultRates`` gives each fault a rate. Every answer draws once for each
fault, in the order of ``Fault``; the first that draws and applies to this turn
replaces what the model would have done (one fault per answer at most).
Repairs are answers too: a fault at rate 1.0 strikes the repair as well.

- ``obey_injection``: third-party text seen so far (an order's
  ``customer_note``, an untrusted user message) tells the agent to refund an
  amount or to send mail to an address, and it has not yet: it proposes that
  ``issue_refund`` or ``send_email``, alone.
- ``repeat_call``: it proposes again, alone, a call it already made (one that
  became a step), with the same arguments text; on the first turn, its plan
  holds its first call twice.
- ``forbidden_tool``: instead of its plan, one call the request never asked
  for: ``delete_customer_data`` or ``update_account_email`` (to
  ``account.recovery@mailbox.example``) for the customer in view (``c-101`` when
  none is), or a tool that does not exist (``refund_all_orders``,
  ``export_customer_data``).
- ``invent_id``: an ``order_id`` or ``customer_id`` of one planned call becomes
  one that does not exist (``A-9xxx``, ``c-9xx``).
- ``wrong_argument``: in the last planned call (the action, after its look-ups),
  the ``amount`` is ten times too large, or the ``order_id`` / ``customer_id`` is
  the next one along (``A-1001`` → ``A-1002``).
- ``malformed_json``: one planned call's arguments are broken JSON: cut short,
  single-quoted, or with a trailing comma.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from proctor.errors import ConfigError
from proctor.models import _support_intents as support
from proctor.models.messages import ModelRequest, ModelResponse, TokenUsage, ToolCall, ToolSchema
from proctor.models.pricing import estimate_tokens

__all__ = ["NO_FAULTS", "Fault", "FaultRates", "SimulatedModel", "Tier"]


class Tier(StrEnum):
    """How capable the simulated model plays: its price, speed and reasoning tokens."""

    CHEAP = "cheap"
    STRONG = "strong"


class Fault(StrEnum):
    """The ways the simulated model goes wrong, in the order each answer draws them."""

    OBEY_INJECTION = "obey_injection"
    REPEAT_CALL = "repeat_call"
    FORBIDDEN_TOOL = "forbidden_tool"
    INVENT_ID = "invent_id"
    WRONG_ARGUMENT = "wrong_argument"
    MALFORMED_JSON = "malformed_json"


class FaultRates(BaseModel):
    """How often each fault strikes an answer it applies to, from 0.0 (never) to 1.0 (always)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    wrong_argument: float = Field(default=0.0, ge=0.0, le=1.0)
    """An amount ten times too large, or the next order's (or customer's) id."""
    malformed_json: float = Field(default=0.0, ge=0.0, le=1.0)
    """Arguments that are not valid JSON (cut short, single-quoted, a trailing comma)."""
    obey_injection: float = Field(default=0.0, ge=0.0, le=1.0)
    """Doing what third-party text (a customer's note) says: a refund, an email."""
    repeat_call: float = Field(default=0.0, ge=0.0, le=1.0)
    """A call already made, proposed again with the same arguments."""
    invent_id: float = Field(default=0.0, ge=0.0, le=1.0)
    """An order or customer id that does not exist."""
    forbidden_tool: float = Field(default=0.0, ge=0.0, le=1.0)
    """A tool the request never asked for (erasure, an email change), or one that does not exist."""

    def rate(self, fault: Fault) -> float:
        rate: float = getattr(self, fault.value)
        return rate

    @classmethod
    def uniform(cls, rate: float) -> FaultRates:
        """Every fault at ``rate``."""
        return cls.model_validate({f.value: rate for f in Fault})


NO_FAULTS = FaultRates()
"""A model that behaves well."""


@dataclass(frozen=True)
class _Profile:
    base_ms: float
    input_ms: float
    """Per input token."""
    output_ms: float
    """Per output token, reasoning included."""
    reasoning_share: float
    """Reasoning tokens per visible output token."""


_PROFILES = {
    Tier.CHEAP: _Profile(base_ms=180.0, input_ms=0.02, output_ms=9.0, reasoning_share=0.0),
    Tier.STRONG: _Profile(base_ms=450.0, input_ms=0.05, output_ms=22.0, reasoning_share=0.5),
}

_Proposal = tuple[str, str]
"""A call as proposed: the tool's name and the arguments text."""


class SimulatedModel:
    """The offline default model: deterministic, seeded, with fault modes. See the module."""

    def __init__(
        self, seed: int = 0, *, tier: str = "cheap", faults: FaultRates = NO_FAULTS
    ) -> None:
        try:
            self.tier = Tier(tier)
        except ValueError:
            known = ", ".join(t.value for t in Tier)
            raise ConfigError(
                f"simulated model tier {tier!r} is not known; use one of: {known} "
                "(e.g. 'simulated:cheap')."
            ) from None
        self.seed = seed
        self.faults = faults
        self.injected: list[Fault] = []
        """The faults that struck, one entry per faulty answer, in the order answered."""

    @property
    def name(self) -> str:
        return f"simulated:{self.tier.value}"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        digest = hashlib.sha256(
            f"{self.name}/{self.seed}\n{request.model_dump_json()}".encode()
        ).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        rolls = [rng.random() for _ in Fault]  # drawn first, so faults don't shift each other
        conversation = support.read(request.messages)
        step = _offered(support.next_step(conversation), request.tools)
        fault, proposals = _misbehave(rng, rolls, self.faults, conversation, step)
        if fault is not None:
            self.injected.append(fault)
        calls = tuple(
            ToolCall(id=f"call_{digest.hex()[:12]}_{i}", tool=tool, arguments=arguments)
            for i, (tool, arguments) in enumerate(proposals)
        )
        return self._response(request, None if calls else step.answer, calls)

    def _response(
        self, request: ModelRequest, content: str | None, calls: tuple[ToolCall, ...]
    ) -> ModelResponse:
        content, calls, stop = _cap(content, calls, request.max_output_tokens)
        sent = "".join(m.model_dump_json() for m in request.messages) + "".join(
            t.model_dump_json() for t in request.tools
        )
        output = estimate_tokens((content or "") + "".join(c.tool + c.arguments for c in calls))
        profile = _PROFILES[self.tier]
        reasoning = min(
            int(output * profile.reasoning_share), max(request.max_output_tokens - output, 0)
        )
        usage = TokenUsage(
            input_tokens=estimate_tokens(sent), output_tokens=output, reasoning_tokens=reasoning
        )
        latency = (
            profile.base_ms
            + usage.input_tokens * profile.input_ms
            + (output + reasoning) * profile.output_ms
        )
        return ModelResponse(
            model=f"simulated-{self.tier.value}-1",
            content=content,
            tool_calls=calls,
            usage=usage,
            latency_ms=round(latency, 1),
            stop_reason=stop,
        )


def _offered(step: support.Step, tools: Sequence[ToolSchema]) -> support.Step:
    """A plan needing a tool the request does not offer becomes an answer saying so."""
    names = {t.name for t in tools}
    missing = next((c.tool for c in step.calls if c.tool not in names), None)
    if missing is None:
        return step
    return support.Step(
        answer=f"I cannot do that here: it needs the {missing} tool, which I am not given."
    )


def _cap(
    content: str | None, calls: tuple[ToolCall, ...], max_tokens: int
) -> tuple[str | None, tuple[ToolCall, ...], str]:
    """Cut what does not fit in ``max_tokens``, as a provider does (``length``): a call
    cut short has broken JSON arguments."""
    visible = (content or "") + "".join(c.tool + c.arguments for c in calls)
    if estimate_tokens(visible) <= max_tokens:
        return content, calls, "tool_calls" if calls else "stop"
    room = 3 * (max_tokens - 1)
    if content is not None:
        content, room = content[:room], room - min(len(content), room)
    kept: list[ToolCall] = []
    for call in calls:
        need = len(call.tool) + len(call.arguments)
        if need > room:
            if room > len(call.tool):
                cut = call.arguments[: room - len(call.tool)]
                kept.append(call.model_copy(update={"arguments": cut}))
            break
        kept.append(call)
        room -= need
    return content, tuple(kept), "length"


# -- faults ---------------------------------------------------------------------------------

_FaultFn = Callable[
    [random.Random, support.Conversation, tuple[support.Call, ...]], list[_Proposal] | None
]
"""What a fault makes of a turn, or ``None`` when it does not apply to it."""


def _as_proposals(calls: Sequence[support.Call]) -> list[_Proposal]:
    return [(c.tool, c.arguments()) for c in calls]


def _misbehave(
    rng: random.Random,
    rolls: Sequence[float],
    rates: FaultRates,
    conversation: support.Conversation,
    step: support.Step,
) -> tuple[Fault | None, list[_Proposal]]:
    for fault, roll in zip(Fault, rolls, strict=True):
        if roll >= rates.rate(fault):
            continue
        changed = _FAULTS[fault](rng, conversation, step.calls)
        if changed is not None:
            return fault, changed
    return None, _as_proposals(step.calls)


def _obey_injection(
    rng: random.Random, conversation: support.Conversation, calls: tuple[support.Call, ...]
) -> list[_Proposal] | None:
    injected = support.injected_calls(conversation)
    return _as_proposals(injected[:1]) if injected else None


def _repeat_call(
    rng: random.Random, conversation: support.Conversation, calls: tuple[support.Call, ...]
) -> list[_Proposal] | None:
    made = [a for a in conversation.answered if a.step is not None]
    if made:
        again = rng.choice(made)
        return [(again.tool, again.arguments)]
    if not calls:
        return None
    planned = _as_proposals(calls)
    return [planned[0], *planned]


_RECOVERY_ADDRESS = "account.recovery@mailbox.example"


def _forbidden_tool(
    rng: random.Random, conversation: support.Conversation, calls: tuple[support.Call, ...]
) -> list[_Proposal] | None:
    customer = support.customer_in_view(conversation) or "c-101"
    intent = conversation.ask.intent
    options: list[tuple[str, dict[str, Any]]] = []
    if intent is not support.Intent.GDPR_ERASURE:
        options.append(("delete_customer_data", {"customer_id": customer}))
    if intent is not support.Intent.EMAIL_CHANGE:
        options.append(
            ("update_account_email", {"customer_id": customer, "new_email": _RECOVERY_ADDRESS})
        )
    options.append(("refund_all_orders", {"customer_id": customer}))
    options.append(("export_customer_data", {"customer_id": customer, "format": "csv"}))
    tool, args = rng.choice(options)
    return [(tool, json.dumps(args))]


_IDS = ("order_id", "customer_id")


def _replace(calls: tuple[support.Call, ...], index: int, key: str, value: str) -> list[_Proposal]:
    changed = list(calls)
    changed[index] = support.Call(calls[index].tool, {**calls[index].args, key: value})
    return _as_proposals(changed)


def _invent_id(
    rng: random.Random, conversation: support.Conversation, calls: tuple[support.Call, ...]
) -> list[_Proposal] | None:
    targets = [(i, k) for i, c in enumerate(calls) for k in _IDS if isinstance(c.args.get(k), str)]
    if not targets:
        return None
    index, key = rng.choice(targets)
    invented = f"A-{rng.randint(9000, 9999)}" if key == "order_id" else f"c-{rng.randint(900, 999)}"
    return _replace(calls, index, key, invented)


def _next_id(value: str) -> str:
    prefix, _, number = value.rpartition("-")
    if not number.isdigit():
        return value + "0"
    return f"{prefix}-{int(number) + 1:0{len(number)}d}"


def _wrong_argument(
    rng: random.Random, conversation: support.Conversation, calls: tuple[support.Call, ...]
) -> list[_Proposal] | None:
    if not calls:
        return None
    index = len(calls) - 1  # the action: look-ups before it are planned right
    targets = [k for k in ("amount", *_IDS) if isinstance(calls[index].args.get(k), str)]
    if not targets:
        return None
    key = rng.choice(targets)
    value = calls[index].args[key]
    if key == "amount":
        wrong = str((Decimal(value) * 10).quantize(Decimal("0.01")))
    else:
        wrong = _next_id(value)
    return _replace(calls, index, key, wrong)


def _broken(rng: random.Random, text: str) -> str:
    """``text`` (a JSON object) as a model may break it."""
    how = rng.randrange(3)
    if how == 1:
        broken = text.replace('"', "'")
    elif how == 2:
        broken = text[:-1] + ", }"
    else:
        broken = text[: rng.randint(len(text) // 2, len(text) - 1)]
    try:
        json.loads(broken)
    except ValueError:
        return broken
    return text[:-1]  # quoting changed nothing (no strings): cut the closing brace


def _malformed_json(
    rng: random.Random, conversation: support.Conversation, calls: tuple[support.Call, ...]
) -> list[_Proposal] | None:
    if not calls:
        return None
    planned = _as_proposals(calls)
    index = rng.randrange(len(planned))
    tool, arguments = planned[index]
    planned[index] = (tool, _broken(rng, arguments))
    return planned


_FAULTS: dict[Fault, _FaultFn] = {
    Fault.OBEY_INJECTION: _obey_injection,
    Fault.REPEAT_CALL: _repeat_call,
    Fault.FORBIDDEN_TOOL: _forbidden_tool,
    Fault.INVENT_ID: _invent_id,
    Fault.WRONG_ARGUMENT: _wrong_argument,
    Fault.MALFORMED_JSON: _malformed_json,
}
