"""What model calls cost: a price table, and the worst case a call may cost before it is made."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from proctor.errors import ConfigError
from proctor.models.messages import ModelRequest, TokenUsage

MILLION = Decimal(1_000_000)


class Price(BaseModel):
    """USD per million tokens. Reasoning tokens are billed as output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: Decimal = Field(ge=0)
    cached_input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)


def _p(input_: str, cached: str, output: str) -> Price:
    return Price(input=Decimal(input_), cached_input=Decimal(cached), output=Decimal(output))


DEFAULT_PRICES: Mapping[str, Price] = {
    # Public list prices per million tokens; a bundle's proctor.yaml overrides or adds.
    "openai:gpt-4o": _p("2.50", "1.25", "10.00"),
    "openai:gpt-4o-mini": _p("0.15", "0.075", "0.60"),
    "openai:gpt-4.1": _p("2.00", "0.50", "8.00"),
    "openai:gpt-4.1-mini": _p("0.40", "0.10", "1.60"),
    "openai:gpt-4.1-nano": _p("0.10", "0.025", "0.40"),
    "openai:o3": _p("2.00", "0.50", "8.00"),
    "openai:o4-mini": _p("1.10", "0.275", "4.40"),
    "anthropic:claude-sonnet-4": _p("3.00", "0.30", "15.00"),
    "anthropic:claude-opus-4": _p("15.00", "1.50", "75.00"),
    "anthropic:claude-3-5-haiku": _p("0.80", "0.08", "4.00"),
    "anthropic:claude-haiku-4-5": _p("1.00", "0.10", "5.00"),
    "anthropic:claude-opus-4-5": _p("5.00", "0.50", "25.00"),
    "anthropic:claude-3-5-sonnet": _p("3.00", "0.30", "15.00"),
    # The offline simulated model is priced like a small hosted one, so demos show costs.
    "simulated:cheap": _p("0.15", "0.075", "0.60"),
    "simulated:strong": _p("2.50", "1.25", "10.00"),
}


def estimate_tokens(text: str) -> int:
    """Tokens in ``text``, estimated on the high side (about 3 characters a token)."""
    return len(text) // 3 + 1


class PriceTable:
    """Prices by model name (``provider:model``); a dated model id finds its family's price."""

    def __init__(self, overrides: Mapping[str, Price] | None = None) -> None:
        self._prices = {**DEFAULT_PRICES, **(overrides or {})}

    def price(self, model: str) -> Price:
        """The price of ``model``; the longest known name it starts with, for dated ids."""
        found = self._prices.get(model)
        if found is None:
            prefixes = [name for name in self._prices if model.startswith(name)]
            if prefixes:
                found = self._prices[max(prefixes, key=len)]
        if found is None:
            raise ConfigError(
                f"no price for model {model!r}: its cost cannot be bounded, so it is not "
                "called. Add it under `prices:` in the bundle's proctor.yaml."
            )
        return found

    def cost(self, model: str, usage: TokenUsage) -> Decimal:
        p = self.price(model)
        total = (
            usage.input_tokens * p.input
            + usage.cached_input_tokens * p.cached_input
            + (usage.output_tokens + usage.reasoning_tokens) * p.output
        )
        return total / MILLION

    def worst_case(self, model: str, request: ModelRequest) -> tuple[Decimal, int]:
        """The most a request may cost (every input token uncached, every output token
        written), and the most tokens it may use."""
        p = self.price(model)
        text = "".join(m.model_dump_json() for m in request.messages) + "".join(
            t.model_dump_json() for t in request.tools
        )
        tokens_in = estimate_tokens(text)
        usd = (tokens_in * p.input + request.max_output_tokens * p.output) / MILLION
        return usd, tokens_in + request.max_output_tokens
