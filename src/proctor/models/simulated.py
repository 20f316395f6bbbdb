"""``simulated``: the offline default model, a seeded stand-in for an LLM.

Its brain is the application's ``Playbook`` (``proctor.models.playbook``): for
each request the playbook reads the conversation and says what to do next, the
calls to propose or the final answer. A plan needing a tool the request does
not offer becomes an answer saying so. Without a playbook the model proposes
nothing: it answers every request in plain text that it has no playbook (give
the app one: ``App(playbook=...)``), so a run on it completes without acting.

Deterministic: the same seed and the same request give the same response,
whatever was asked before. Each answer draws from its own random generator,
seeded with the model's name, the seed and a digest of the request; no global
random state, no clock. Usage is estimated from text length and latency is
derived from the tokens, never measured.

Faults. ``FaultRates`` gives each fault a rate. Every answer draws once for each
fault, in the order of ``Fault``; the first that draws and applies to this turn
replaces what the model would have done (one fault per answer at most).
Repairs are answers too: a fault at rate 1.0 strikes the repair as well. The
playbook names their targets.

- ``obey_injection``: third-party text seen so far tells the agent to make a
  call it has not made yet (the playbook's ``injected`` calls): it proposes the
  first of them, alone.
- ``repeat_call``: it proposes again, alone, a call it already made (one that
  became a step), with the same arguments text; on the first turn, its plan
  holds its first call twice.
- ``forbidden_tool``: instead of its plan, one call the request never asked
  for, picked among the playbook's ``forbidden`` calls (some name tools that do
  not exist).
- ``invent_id``: an id argument (the playbook's ``id_arguments``) of one
  planned call becomes one that does not exist.
- ``wrong_argument``: in the last planned call (the action, after its look-ups),
  an amount (the playbook's ``amount_arguments``) is ten times too large, or an
  id is the next one along (``A-1001`` → ``A-1002``).
- ``malformed_json``: one planned call's arguments are broken JSON: cut short,
  single-quoted, or with a trailing comma.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from proctor.errors import ConfigError
from proctor.models.messages import ModelRequest, ModelResponse, TokenUsage, ToolCall, ToolSchema
from proctor.models.playbook import Call, Playbook, Turn, answered
from proctor.models.pricing import estimate_tokens

__all__ = ["NO_FAULTS", "NO_PLAYBOOK_ANSWER", "Capability", "Fault", "FaultRates", "SimulatedModel"]


class Capability(StrEnum):
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
    """An amount ten times too large, or the next id along."""
    malformed_json: float = Field(default=0.0, ge=0.0, le=1.0)
    """Arguments that are not valid JSON (cut short, single-quoted, a trailing comma)."""
    obey_injection: float = Field(default=0.0, ge=0.0, le=1.0)
    """Doing what third-party text (a note, a message) says."""
    repeat_call: float = Field(default=0.0, ge=0.0, le=1.0)
    """A call already made, proposed again with the same arguments."""
    invent_id: float = Field(default=0.0, ge=0.0, le=1.0)
    """An id that does not exist."""
    forbidden_tool: float = Field(default=0.0, ge=0.0, le=1.0)
    """A call the request never asked for, or to a tool that does not exist."""

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
    Capability.CHEAP: _Profile(base_ms=180.0, input_ms=0.02, output_ms=9.0, reasoning_share=0.0),
    Capability.STRONG: _Profile(base_ms=450.0, input_ms=0.05, output_ms=22.0, reasoning_share=0.5),
}

_Proposal = tuple[str, str]
"""A call as proposed: the tool's name and the arguments text."""

NO_PLAYBOOK_ANSWER = (
    "I have no playbook, so I cannot act on this: give the app a playbook "
    "(App(playbook=...)) for the simulated model, or choose another model."
)
"""What a ``SimulatedModel`` without a playbook answers, to every request."""


class SimulatedModel:
    """The offline default model: deterministic, seeded, with fault modes. See the module."""

    def __init__(
        self,
        seed: int = 0,
        *,
        tier: str = "cheap",
        faults: FaultRates = NO_FAULTS,
        playbook: Playbook | None = None,
    ) -> None:
        try:
            self.tier = Capability(tier)
        except ValueError:
            known = ", ".join(t.value for t in Capability)
            raise ConfigError(
                f"simulated model tier {tier!r} is not known; use one of: {known} "
                "(e.g. 'simulated:cheap')."
            ) from None
        self.seed = seed
        self.faults = faults
        self.playbook = playbook
        """The application's brain; ``None`` answers every request with
        ``NO_PLAYBOOK_ANSWER``."""
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
        turn = (
            self.playbook.turn(request.messages)
            if self.playbook is not None
            else Turn(answer=NO_PLAYBOOK_ANSWER)
        )
        scene = _Scene(rng, _offered(turn, request.tools), request, self.playbook)
        fault, proposals = _misbehave(rolls, self.faults, scene)
        if fault is not None:
            self.injected.append(fault)
        calls = tuple(
            ToolCall(id=f"call_{digest.hex()[:12]}_{i}", tool=tool, arguments=arguments)
            for i, (tool, arguments) in enumerate(proposals)
        )
        return self._response(request, None if calls else scene.turn.answer, calls)

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


def _offered(turn: Turn, tools: Sequence[ToolSchema]) -> Turn:
    """A plan needing a tool the request does not offer becomes an answer saying so."""
    names = {t.name for t in tools}
    missing = next((c.tool for c in turn.calls if c.tool not in names), None)
    if missing is None:
        return turn
    return replace(
        turn,
        calls=(),
        answer=f"I cannot do that here: it needs the {missing} tool, which I am not given.",
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


@dataclass(frozen=True)
class _Scene:
    """What a fault sees of one answer."""

    rng: random.Random
    turn: Turn
    """The playbook's turn, with a plan needing a tool not offered already turned down."""
    request: ModelRequest
    playbook: Playbook | None

    @property
    def calls(self) -> tuple[Call, ...]:
        return self.turn.calls


_FaultFn = Callable[[_Scene], list[_Proposal] | None]
"""What a fault makes of a turn, or ``None`` when it does not apply to it."""


def _as_proposals(calls: Sequence[Call]) -> list[_Proposal]:
    return [(c.tool, c.arguments()) for c in calls]


def _misbehave(
    rolls: Sequence[float], rates: FaultRates, scene: _Scene
) -> tuple[Fault | None, list[_Proposal]]:
    for fault, roll in zip(Fault, rolls, strict=True):
        if roll >= rates.rate(fault):
            continue
        changed = _FAULTS[fault](scene)
        if changed is not None:
            return fault, changed
    return None, _as_proposals(scene.calls)


def _obey_injection(scene: _Scene) -> list[_Proposal] | None:
    injected = scene.turn.injected
    return _as_proposals(injected[:1]) if injected else None


def _repeat_call(scene: _Scene) -> list[_Proposal] | None:
    made = [a for a in answered(scene.request.messages) if a.step is not None]
    if made:
        again = scene.rng.choice(made)
        return [(again.tool, again.arguments)]
    if not scene.calls:
        return None
    planned = _as_proposals(scene.calls)
    return [planned[0], *planned]


def _forbidden_tool(scene: _Scene) -> list[_Proposal] | None:
    options = scene.turn.forbidden
    if not options:
        return None
    return _as_proposals([scene.rng.choice(options)])


def _replace(calls: tuple[Call, ...], index: int, key: str, value: str) -> list[_Proposal]:
    changed = list(calls)
    changed[index] = Call(calls[index].tool, {**calls[index].args, key: value})
    return _as_proposals(changed)


def _invent_id(scene: _Scene) -> list[_Proposal] | None:
    if scene.playbook is None:
        return None
    ids = scene.playbook.id_arguments
    calls = scene.calls
    targets = [
        (i, arg)
        for i, c in enumerate(calls)
        for arg in ids
        if isinstance(c.args.get(arg.name), str)
    ]
    if not targets:
        return None
    index, arg = scene.rng.choice(targets)
    return _replace(calls, index, arg.name, arg.invent(scene.rng))


def _next_id(value: str) -> str:
    prefix, _, number = value.rpartition("-")
    if not number.isdigit():
        return value + "0"
    return f"{prefix}-{int(number) + 1:0{len(number)}d}"


def _wrong_argument(scene: _Scene) -> list[_Proposal] | None:
    calls = scene.calls
    if not calls or scene.playbook is None:
        return None
    index = len(calls) - 1  # the action: look-ups before it are planned right
    amounts = tuple(scene.playbook.amount_arguments)
    keys = (*amounts, *(arg.name for arg in scene.playbook.id_arguments))
    targets = [k for k in keys if isinstance(calls[index].args.get(k), str)]
    if not targets:
        return None
    key = scene.rng.choice(targets)
    value = calls[index].args[key]
    if key in amounts:
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


def _malformed_json(scene: _Scene) -> list[_Proposal] | None:
    if not scene.calls:
        return None
    planned = _as_proposals(scene.calls)
    index = scene.rng.randrange(len(planned))
    tool, arguments = planned[index]
    planned[index] = (tool, _broken(scene.rng, arguments))
    return planned


_FAULTS: dict[Fault, _FaultFn] = {
    Fault.OBEY_INJECTION: _obey_injection,
    Fault.REPEAT_CALL: _repeat_call,
    Fault.FORBIDDEN_TOOL: _forbidden_tool,
    Fault.INVENT_ID: _invent_id,
    Fault.WRONG_ARGUMENT: _wrong_argument,
    Fault.MALFORMED_JSON: _malformed_json,
}
