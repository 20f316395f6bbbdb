"""Plans as commitments: the calls a run said it would make, before outside content.

A run commits to a plan made from the requester's words alone, before it reads
anything from outside: the tools it intends to call, with the arguments it
already knows. Every later call is compared with it, and policies see the
comparison as ``context.plan``:

- ``committed``: whether the run committed to a plan;
- ``in_plan``: the plan names this tool;
- ``args_match``: a planned call of this tool has every argument it named equal
  to this call's;
- ``sinks_match``: a planned call of this tool named each of the tool's sinks,
  with the value this call has (a recipient or payee changed since planning
  does not match).

So a policy can hold a call outside the plan, or one whose recipient changed
after the run read an email (``!context.plan.sinks_match``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from proctor.runs.provenance import normalized
from proctor.tools import Tool


@dataclass(frozen=True)
class PlannedCall:
    """A call the run intends to make: its tool, and the arguments it already knows."""

    tool: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"tool": self.tool, "args": dict(self.args)}


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return normalized(a) == normalized(b)
    return bool(a == b) or str(a) == str(b)


def _matches(planned: PlannedCall, args: Mapping[str, Any]) -> bool:
    return all(name in args and _same(value, args[name]) for name, value in planned.args.items())


def _sinks_match(planned: PlannedCall, t: Tool, args: Mapping[str, Any]) -> bool:
    return all(
        name in planned.args and name in args and _same(planned.args[name], args[name])
        for name in t.sinks
    )


def plan_context(
    plan: Sequence[PlannedCall] | None, t: Tool, args: Mapping[str, Any]
) -> dict[str, bool]:
    """``context.plan`` for a call of ``t`` with ``args``."""
    if plan is None:
        return {"committed": False, "in_plan": False, "args_match": False, "sinks_match": False}
    mine = [p for p in plan if p.tool == t.name]
    return {
        "committed": True,
        "in_plan": bool(mine),
        "args_match": any(_matches(p, args) for p in mine),
        "sinks_match": any(_sinks_match(p, t, args) for p in mine),
    }
