"""Building an agent from a model spec, as the CLI, the service and workers do."""

from __future__ import annotations

from proctor.agent.loop import Agent, AgentObserver
from proctor.models import Model
from proctor.models.registry import model_from_spec
from proctor.models.simulated import FaultRates, SimulatedModel
from proctor.runtime import Runtime

ROUTED = "simulated"
"""The spec under which each request's route picks the simulated model's tier."""


def build_agent(
    runtime: Runtime,
    model: str,
    *,
    seed: int = 0,
    faults: FaultRates | None = None,
    observer: AgentObserver | None = None,
) -> Agent:
    """An agent on ``model``: ``simulated`` (offline; each request's route picks the tier
    from the bundle's routing settings), ``simulated:TIER``, ``openai:MODEL`` or
    ``anthropic:MODEL``. ``seed`` and ``faults`` shape the simulated model only."""
    rates = faults or FaultRates()

    def simulated(tier: str) -> Model:
        return SimulatedModel(seed, tier=tier, faults=rates)

    extra = {"simulated": simulated}
    if model == ROUTED:
        return Agent(runtime, lambda spec: model_from_spec(spec, extra=extra), observer=observer)
    return Agent(runtime, model_from_spec(model, extra=extra), observer=observer)
