"""``proctor run --model openai:… / anthropic:…`` against a local server speaking each
provider's protocol: the run completes and the command prints its summary."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.models import test_anthropic as anthropic_wire
from tests.models import test_openai as openai_wire
from tests.models.wire import Reply, WireServer

from .conftest import Cli

REQUEST = "Where is my order A-1001?"
ANSWER = "Order A-1001 was delivered."


@pytest.fixture
def wire() -> Iterator[WireServer]:
    server = WireServer()
    yield server
    server.stop()


def _openai(wire: WireServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{wire.url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    call = openai_wire.tool_call("call_1", "lookup_order", '{"order_id": "A-1001"}')
    wire.reply(
        Reply(openai_wire.completion(tool_calls=[call], finish_reason="tool_calls")),
        Reply(openai_wire.completion(content=ANSWER)),
    )
    return "openai:gpt-4o-mini"


def _anthropic(wire: WireServer, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", wire.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    use = anthropic_wire.tool_use("toolu_1", "lookup_order", {"order_id": "A-1001"})
    wire.reply(
        Reply(anthropic_wire.message(use, stop_reason="tool_use")),
        Reply(anthropic_wire.message(anthropic_wire.text(ANSWER))),
    )
    return "anthropic:claude-sonnet-4-5"


PROVIDERS = {"openai": _openai, "anthropic": _anthropic}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
def test_a_provider_run_prints_its_summary_and_exits_0(
    cli: Cli, wire: WireServer, monkeypatch: pytest.MonkeyPatch, provider: str, as_json: bool
) -> None:
    model = PROVIDERS[provider](wire, monkeypatch)
    result = cli("run", REQUEST, "--model", model, *(["--json"] if as_json else []))
    assert result.exit_code == 0, (result.output, result.exception)
    assert len(wire.requests) == 2  # the tool call, then the answer
    if as_json:
        summary = json.loads(result.stdout)
        assert (summary["state"], summary["answer"]) == ("completed", ANSWER)
        assert [s["tool"] for s in summary["steps"]] == ["lookup_order"]
        assert float(summary["cost_usd"]) > 0
    else:
        assert "completed" in result.stdout
        assert f"answer: {ANSWER}" in result.stdout
