"""model_from_spec: provider:model specs, keys and URLs from the environment, clear errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from proctor.errors import ConfigError, ModelError
from proctor.models import Model, ModelRequest, ModelResponse, UserMessage
from proctor.models.anthropic import AnthropicModel
from proctor.models.openai import OpenAIModel
from proctor.models.registry import model_from_spec

from .test_anthropic import ANSWER as ANTHROPIC_ANSWER
from .test_openai import ANSWER as OPENAI_ANSWER
from .wire import Reply, WireServer

HI = ModelRequest(messages=(UserMessage(content="hi"),))


class Canned:
    """A stand-in for the ``simulated`` provider another module builds."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario

    @property
    def name(self) -> str:
        return f"simulated:{self.scenario}"

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return ModelResponse(model=self.scenario, content="ok")


SIMULATED: dict[str, Callable[[str], Model]] = {"simulated": Canned}


@pytest.fixture
async def built() -> AsyncIterator[Callable[..., Model]]:
    """model_from_spec, closing every provider model it builds after the test."""
    models: list[OpenAIModel | AnthropicModel] = []

    def build(spec: str, **kwargs: Any) -> Model:
        model = model_from_spec(spec, **kwargs)
        if isinstance(model, OpenAIModel | AnthropicModel):
            models.append(model)
        return model

    yield build
    for model in models:
        await model.aclose()


async def test_openai_key_and_url_come_from_the_environment(
    built: Callable[..., Model], wire: WireServer
) -> None:
    wire.reply(OPENAI_ANSWER)
    env = {"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": f"{wire.url}/v1"}

    model = built("openai:gpt-4o-mini", env=env)
    await model.complete(HI)

    assert isinstance(model, OpenAIModel)
    assert model.name == "openai:gpt-4o-mini"
    assert wire.requests[0].headers["authorization"] == "Bearer sk-env"
    assert wire.requests[0].body["model"] == "gpt-4o-mini"


async def test_anthropic_key_and_url_come_from_the_environment(
    built: Callable[..., Model], wire: WireServer
) -> None:
    wire.reply(ANTHROPIC_ANSWER)
    env = {"ANTHROPIC_API_KEY": "sk-ant-env", "ANTHROPIC_BASE_URL": wire.url}

    model = built("anthropic:claude-sonnet-5-5", env=env)
    await model.complete(HI)

    assert isinstance(model, AnthropicModel)
    assert model.name == "anthropic:claude-sonnet-5-5"
    assert wire.paths() == ["/v1/messages"]
    assert wire.requests[0].body["model"] == "claude-sonnet-5-5"


async def test_the_process_environment_is_the_default(
    built: Callable[..., Model], wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wire.reply(OPENAI_ANSWER)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-process")
    monkeypatch.setenv("OPENAI_BASE_URL", f"{wire.url}/v1")

    await built("openai:gpt-4o-mini").complete(HI)

    assert wire.requests[0].headers["authorization"] == "Bearer sk-process"


async def test_arguments_win_over_the_environment(
    built: Callable[..., Model], wire: WireServer
) -> None:
    wire.reply(OPENAI_ANSWER)
    env = {"OPENAI_API_KEY": "sk-env", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}

    model = built("openai:gpt-4o-mini", env=env, api_key="sk-arg", base_url=f"{wire.url}/v1")
    await model.complete(HI)

    assert wire.requests[0].headers["authorization"] == "Bearer sk-arg"


async def test_the_model_is_everything_after_the_first_colon(
    built: Callable[..., Model],
) -> None:
    model = built("openai:llama3.1:8b", env={"OPENAI_API_KEY": "ollama"})

    assert model.name == "openai:llama3.1:8b"


async def test_options_reach_the_provider(built: Callable[..., Model], wire: WireServer) -> None:
    wire.always(Reply({"error": {"message": "down"}}, status=503))
    env = {"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": f"{wire.url}/v1"}

    model = built("openai:gpt-4o-mini", env=env, max_retries=0, timeout_s=1.0)
    with pytest.raises(ModelError, match="after 1 attempt"):
        await model.complete(HI)

    assert len(wire.requests) == 1


async def test_extra_providers_are_built_from_their_factory(
    built: Callable[..., Model],
) -> None:
    model = built("simulated:support", extra=SIMULATED, env={})

    assert isinstance(model, Canned)
    assert model.name == "simulated:support"


@pytest.mark.parametrize("var", ["OPENAI_API_KEY", "ANTHROPIC_API_KEY"])
def test_a_missing_key_names_the_variable(var: str) -> None:
    provider = var.split("_")[0].lower()

    with pytest.raises(ConfigError, match=f"set {var} or pass api_key"):
        model_from_spec(f"{provider}:some-model", env={var: ""})


def test_an_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError) as raised:
        model_from_spec("gemini:pro", extra=SIMULATED, env={})

    assert "unknown provider 'gemini'" in str(raised.value)
    assert "known providers: anthropic, openai, simulated" in str(raised.value)


@pytest.mark.parametrize("spec", ["gpt-4o-mini", "openai:", ":gpt-4o", ""])
def test_a_spec_without_provider_and_model_is_refused(spec: str) -> None:
    with pytest.raises(ConfigError, match="must be 'provider:model'"):
        model_from_spec(spec, env={"OPENAI_API_KEY": "sk"})


def test_an_extra_provider_takes_no_key_url_or_options() -> None:
    with pytest.raises(ConfigError, match="takes no base_url, api_key or options"):
        model_from_spec("simulated:support", extra=SIMULATED, base_url="http://x", env={})


@pytest.mark.parametrize(
    ("options", "problem"),
    [({"timeout_s": 0}, "timeout_s must be more than 0"), ({"temprature": 1}, "temprature")],
)
def test_bad_options_are_a_config_error(options: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        model_from_spec("openai:gpt-4o-mini", env={"OPENAI_API_KEY": "sk"}, **options)


def test_a_missing_sdk_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "proctor.models.anthropic", None)

    with pytest.raises(ConfigError, match=r"pip install 'proctor\[providers\]'"):
        model_from_spec("anthropic:claude-sonnet-5-5", env={"ANTHROPIC_API_KEY": "sk"})


def test_the_registry_imports_no_sdk_until_a_spec_needs_one() -> None:
    code = (
        "import sys\n"
        "from proctor.models.registry import model_from_spec\n"
        "assert 'openai' not in sys.modules and 'anthropic' not in sys.modules\n"
    )

    subprocess.run([sys.executable, "-c", code], check=True)
