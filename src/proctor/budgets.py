"""Per-run caps and the usage counted against them."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class BudgetCaps(BaseModel):
    """Caps for one run. ``None`` means no cap; ``0`` means nothing is allowed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tool_calls: int | None = Field(default=None, ge=0)
    """Side-effecting tool calls the run may make."""
    model_tokens: int | None = Field(default=None, ge=0)
    """Model tokens (input, cached input, output and reasoning together)."""
    usd: Decimal | None = Field(default=None, ge=0)
    """Money the run may spend on models and priced tools."""
    wall_time_s: float | None = Field(default=None, ge=0)
    """Active seconds from start, not counting time spent awaiting approval."""

    def filled_from(self, defaults: BudgetCaps) -> BudgetCaps:
        """These caps, with each one left open taken from ``defaults``."""
        values = {
            name: getattr(defaults, name) if getattr(self, name) is None else getattr(self, name)
            for name in type(self).model_fields
        }
        return BudgetCaps(**values)
