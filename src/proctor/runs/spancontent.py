"""What the opt-in content capture puts on a run's spans: messages and tool calls, in the
shapes of the GenAI semantic conventions.

Off by default (``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``, see
``docs/telemetry.md``). When on, each model call span carries the messages it was sent
and the answer it gave (from the run's sealed conversation), and each tool span the
call's arguments and result as stored (redacted). Every string goes through the
exporter's redaction like any other attribute before it leaves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from proctor.runs.views import StepView

ModelContent = dict[str, str]
"""Attributes of one model call span: ``gen_ai.input.messages`` and the rest."""


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _arguments(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    role = message.get("role")
    if role == "tool":
        return [
            {
                "type": "tool_call_response",
                "id": message.get("tool_call_id"),
                "response": message.get("content", ""),
            }
        ]
    parts: list[dict[str, Any]] = []
    if message.get("content"):
        parts.append({"type": "text", "content": message["content"]})
    for call in message.get("tool_calls") or ():
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": call.get("tool"),
                "arguments": _arguments(str(call.get("arguments", ""))),
            }
        )
    return parts


def model_content(
    conversation: Sequence[Mapping[str, Any]], calls: int, stop_reasons: Sequence[str]
) -> list[ModelContent]:
    """For each of a run's ``calls`` model calls, in order, what it was sent and answered.

    An agent's conversation holds one assistant message per model call: the messages
    before the n-th assistant message are what the n-th call was sent. A call with no
    assistant message (its answer was cut off) gets what it was sent only."""
    system = [m for m in conversation if m.get("role") == "system"]
    found: list[ModelContent] = []
    sent: list[dict[str, Any]] = []
    for message in conversation:
        if len(found) == calls:
            break
        if message.get("role") == "system":
            continue
        if message.get("role") == "assistant":
            reason = stop_reasons[len(found)] if len(found) < len(stop_reasons) else "stop"
            answer = [{"role": "assistant", "parts": _parts(message), "finish_reason": reason}]
            found.append(_content(system, sent, answer))
        sent = [*sent, {"role": message.get("role"), "parts": _parts(message)}]
    while len(found) < calls:
        found.append(_content(system, sent, None))
    return found


def _content(
    system: Sequence[Mapping[str, Any]],
    sent: Sequence[Mapping[str, Any]],
    answer: list[dict[str, Any]] | None,
) -> ModelContent:
    content = {"gen_ai.input.messages": _json(list(sent))}
    if system:
        instructions = [{"type": "text", "content": m.get("content", "")} for m in system]
        content["gen_ai.system_instructions"] = _json(instructions)
    if answer is not None:
        content["gen_ai.output.messages"] = _json(answer)
    # OpenInference viewers (Phoenix) show these as the span's input and output.
    content["input.value"] = content["gen_ai.input.messages"]
    content["input.mime_type"] = "application/json"
    if answer is not None:
        content["output.value"] = content["gen_ai.output.messages"]
        content["output.mime_type"] = "application/json"
    return content


def tool_content(step: StepView) -> dict[str, str]:
    """A tool span's arguments and result, as stored (redacted)."""
    found = {
        "gen_ai.tool.call.arguments": _json(dict(step.args)),
        "input.value": _json(dict(step.args)),
        "input.mime_type": "application/json",
    }
    if step.result is not None:
        found["gen_ai.tool.call.result"] = _json(step.result)
        found["output.value"] = found["gen_ai.tool.call.result"]
        found["output.mime_type"] = "application/json"
    return found
