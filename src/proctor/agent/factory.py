"""Building an agent from a model spec or an app, as the CLI, the service and workers do."""

from __future__ import annotations

from proctor.agent.loop import Agent, AgentConfig, AgentObserver
from proctor.app import App
from proctor.models import Model, Playbook
from proctor.models.registry import model_from_spec
from proctor.models.simulated import FaultRates
from proctor.runtime import Runtime

ROUTED = "simulated"
"""The spec under which each request's route picks the simulated model's tier."""


def build_agent(
    runtime: Runtime,
    model: str,
    *,
    seed: int = 0,
    faults: FaultRates | None = None,
    playbook: Playbook | None = None,
    config: AgentConfig | None = None,
    observer: AgentObserver | None = None,
) -> Agent:
    """An agent on ``model``: ``simulated`` (offline; each request's route picks the tier
    from the bundle's routing settings), ``simulated:TIER``, ``openai:MODEL`` or
    ``anthropic:MODEL``. ``seed``, ``faults`` and ``playbook`` (the app's brain for it)
    shape the simulated model only."""
    rates = faults or FaultRates()

    def make(spec: str) -> Model:
        return model_from_spec(spec, playbook=playbook, seed=seed, faults=rates)

    if model == ROUTED:
        return Agent(runtime, make, config=config, observer=observer)
    return Agent(runtime, make(model), config=config, observer=observer)


def app_config(app: App) -> AgentConfig:
    """The agent's configuration for ``app``: its system prompt, or the generic one."""
    return AgentConfig() if app.system_prompt is None else AgentConfig(app.system_prompt)


def agent_for_app(
    runtime: Runtime,
    app: App,
    *,
    model: str | None = None,
    seed: int = 0,
    faults: FaultRates | None = None,
    observer: AgentObserver | None = None,
) -> Agent:
    """An agent as ``app`` declares it: its model (unless ``model`` names another), its
    system prompt, and its playbook for the simulated model."""
    return build_agent(
        runtime,
        model or app.model or ROUTED,
        seed=seed,
        faults=faults,
        playbook=app.playbook,
        config=app_config(app),
        observer=observer,
    )
