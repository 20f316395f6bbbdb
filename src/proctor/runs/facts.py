"""Facts about a run that policies may use: counts, totals, taint."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from proctor.runs.model import RunSpec
from proctor.tools import Tool, ToolRegistry

_NUMERIC = (int, float, Decimal)


def _numeric_fields(t: Tool) -> list[str]:
    return [
        name
        for name, info in t.args_model.model_fields.items()
        if info.annotation in _NUMERIC and info.annotation is not bool
    ]


@dataclass
class RunFacts:
    """``context.run`` in policies.

    ``calls`` counts executed calls; ``calls_by_tool`` and ``totals`` (the sum of
    every numeric argument of executed calls, per tool and field) exist for
    every registered tool from the start, so a policy can compare them without
    first testing ``has``. ``tainted`` turns true once an untrusted tool's output
    has entered the run.
    """

    base: dict[str, Any]
    calls: int
    calls_by_tool: dict[str, int]
    totals: dict[str, dict[str, Decimal]]
    tainted: bool
    untrusted: frozenset[str]
    numeric: dict[str, list[str]]
    established: dict[str, Any] = field(default_factory=dict)
    """Facts tools established from their results (``facts=``): ``context.run.facts``."""

    @classmethod
    def of(cls, tools: ToolRegistry, spec: RunSpec) -> RunFacts:
        numeric = {t.name: _numeric_fields(t) for t in tools}
        return cls(
            base={
                "tenant": spec.tenant,
                "workflow": spec.workflow,
                "mode": spec.mode.value,
                "agent": spec.agent,
                "requester": spec.requester,
            },
            calls=0,
            calls_by_tool={t.name: 0 for t in tools},
            totals={name: dict.fromkeys(fields, Decimal(0)) for name, fields in numeric.items()},
            tainted=False,
            untrusted=frozenset(t.name for t in tools if t.reads_outside_content),
            numeric=numeric,
        )

    def count(self, t: Tool, args: dict[str, Any]) -> None:
        """An executed call of ``t`` with these (stored) arguments."""
        self.calls += 1
        self.calls_by_tool[t.name] = self.calls_by_tool.get(t.name, 0) + 1
        totals = self.totals.setdefault(t.name, {})
        for name in self.numeric.get(t.name, ()):
            try:
                totals[name] = totals.get(name, Decimal(0)) + Decimal(str(args[name]))
            except (KeyError, InvalidOperation):
                continue  # masked or absent: it cannot be summed
        if t.name in self.untrusted:
            self.tainted = True

    def establish(self, facts: dict[str, Any]) -> None:
        """Facts a successful call established; a later one may replace a fact."""
        self.established.update(facts)

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.base,
            "calls": self.calls,
            "calls_by_tool": dict(self.calls_by_tool),
            "totals": {name: dict(fields) for name, fields in self.totals.items()},
            "tainted": self.tainted,
            "facts": dict(self.established),
        }
