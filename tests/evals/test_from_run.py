"""A scenario from a stored agent run: the observed outcome, as a valid bank file to edit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from proctor import RunState
from proctor.agent import Agent
from proctor.cli.evals import scenario_from_run as scenario_from_run_command
from proctor.errors import RunNotFound
from proctor.evals.from_run import (
    HEADER,
    MISSING_REQUEST,
    request_of,
    scenario_from_run,
    scenario_yaml,
)
from proctor.evals.scenario import BankFile
from proctor.models import ModelResponse, TokenUsage, ToolCall
from proctor.testing import ScriptedModel
from tests import conftest as kernel
from tests.shop import Env

USAGE = TokenUsage(input_tokens=200, output_tokens=40)

env = kernel.env  # the kernel tests' fixture: a runtime factory on a fresh store


def plan(*calls: tuple[str, dict[str, object]]) -> ModelResponse:
    return ModelResponse(
        model="scripted",
        usage=USAGE,
        tool_calls=tuple(
            ToolCall(id=f"c{i}", tool=tool, arguments=json.dumps(args))
            for i, (tool, args) in enumerate(calls)
        ),
    )


async def test_a_completed_run_becomes_a_valid_scenario(env: Env) -> None:
    model = ScriptedModel(
        [
            plan(
                ("lookup", {"order_id": "A-1"}), ("refund", {"order_id": "A-1", "amount": "20.00"})
            ),
            plan(("send_email", {"to": "a@example.com", "body": "Refunded."})),
            ModelResponse(model="scripted", content="Done.", usage=USAGE),
        ]
    )
    rt = env.runtime()
    result = await Agent(rt, model).run("Refund $20 on A-1, please", env.spec())
    assert result.state is RunState.COMPLETED
    with rt.store.read() as conn:
        request = request_of(rt.sealer, conn, result.run_id)
        scenario = scenario_from_run(conn, result.run_id, request=request)
    assert request == "Refund $20 on A-1, please"
    assert scenario["labels"] == ["from_run", "support"]
    assert (scenario["tenant"], scenario["requester"]) == ("acme", "alice")
    assert scenario["expect"]["state"] == "completed"
    assert scenario["expect"]["must"] == [
        {"tool": "lookup", "args": {"order_id": "A-1"}},
        {"tool": "refund", "args": {"order_id": "A-1", "amount": "20.00"}},
        {"tool": "send_email", "args": {"to": "*", "body": "Refunded."}},  # "to" was masked
    ]
    assert scenario["expect"]["must_not"] == []

    text = scenario_yaml(scenario, run_id=result.run_id)
    assert text.startswith(HEADER)
    assert "observed outcome: edit the expectations" in text
    assert result.run_id in text
    bank = BankFile.model_validate(yaml.safe_load(text))
    assert bank.scenarios[0].id == scenario["id"]
    assert bank.scenarios[0].request == "Refund $20 on A-1, please"


async def test_a_denied_run_keeps_its_reason(env: Env) -> None:
    model = ScriptedModel([plan(("refund", {"order_id": "A-1", "amount": "9999.00"}))])
    rt = env.runtime()
    result = await Agent(rt, model).run("Refund everything", env.spec())
    with rt.store.read() as conn:
        scenario = scenario_from_run(conn, result.run_id, request=None)
    assert scenario["expect"]["state"] == "handed_off"
    assert scenario["expect"]["reason"] == "policy_denied"
    assert scenario["expect"]["must"] == []
    assert scenario["request"] == MISSING_REQUEST
    BankFile.model_validate(yaml.safe_load(scenario_yaml(scenario)))


async def test_an_unknown_run(env: Env) -> None:
    rt = env.runtime()
    with rt.store.read() as conn, pytest.raises(RunNotFound):
        scenario_from_run(conn, "run_nope", request=None)
    with rt.store.read() as conn:
        assert request_of(rt.sealer, conn, "run_nope") is None


async def test_cli_scenario_from_run(
    env: Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rt = env.runtime()
    model = ScriptedModel(
        [
            plan(("lookup", {"order_id": "A-1"})),
            ModelResponse(model="scripted", content="Shipped.", usage=USAGE),
        ]
    )
    result = await Agent(rt, model).run("Where is A-1?", env.spec())
    monkeypatch.setenv("PROCTOR_HOME", str(env.tmp / "home"))  # the same key: the same sealer
    monkeypatch.setenv("PROCTOR_DB_URL", env.db_url)
    app, scenario = typer.Typer(), typer.Typer()
    scenario.command("from-run")(scenario_from_run_command)
    app.add_typer(scenario, name="scenario")

    printed = CliRunner().invoke(app, ["scenario", "from-run", result.run_id])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.startswith(HEADER)
    bank = BankFile.model_validate(yaml.safe_load(printed.stdout))
    assert bank.scenarios[0].request == "Where is A-1?"

    out = tmp_path / "scenario.yaml"
    written = CliRunner().invoke(app, ["scenario", "from-run", result.run_id, "--out", str(out)])
    assert written.exit_code == 0, written.output
    assert out.read_text() == printed.stdout
    assert CliRunner().invoke(app, ["scenario", "from-run", "run_nope"]).exit_code != 0
