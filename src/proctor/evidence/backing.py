"""Runs and approvals as the audit chain records them, so a bundle signs only what it backs.

The ``runs`` and ``approvals`` tables are read models: anyone with write access to
the database can rename an approver there without touching the chain. Each run
line takes its agent, requester, workflow, state and reason from the run's
``run.opened`` and last ``run.state`` entries; each approval line its tool, roles,
verdict, approver, role and reason from its ``action.approval_requested`` and
``approval.decided`` entries. Where a table says otherwise (state, reason, or
anything about who decided), that is a :class:`Discrepancy`. A field whose entry's
payload retention purged cannot be backed: the line lists it under ``unbacked``.

Export derives the lines this way; offline verification derives them again from
``audit.jsonl`` and checks that the bundle's lines agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from proctor.audit.events import EntryKind


@dataclass(frozen=True)
class Discrepancy:
    """A table that says something the chain does not."""

    what: str
    """``run <id>`` or ``approval <id>``."""
    field: str
    table: Any
    chain: Any
    entry: int | None
    """The entry that backs the chain's value (``None``: the chain has no such entry)."""

    def __str__(self) -> str:
        source = f"entry {self.entry}" if self.entry is not None else "no entry of the chain"
        return (
            f"{self.what}: {self.field} is {self.table!r} in the table but {self.chain!r} "
            f"in the audit chain ({source})"
        )


@dataclass(frozen=True)
class _Source:
    seq: int
    payload: dict[str, Any] | None
    """``None`` when retention purged it."""


@dataclass
class Backing:
    """The entries of a segment that back runs and approvals."""

    opened: dict[str, _Source] = field(default_factory=dict)
    state: dict[str, _Source] = field(default_factory=dict)
    requested: dict[tuple[str, int], _Source] = field(default_factory=dict)
    decided: dict[tuple[str, int], _Source] = field(default_factory=dict)


def backing_of(lines: Iterable[Mapping[str, Any]]) -> Backing:
    """From ``audit.jsonl`` lines (envelope fields, ``payload`` text or ``None``), in order."""
    backing = Backing()
    for line in lines:
        run_id, kind = line.get("run_id"), line.get("kind")
        if run_id is None:
            continue
        payload = line.get("payload")
        source = _Source(int(line["seq"]), None if payload is None else json.loads(payload))
        step = line.get("step")
        if kind == EntryKind.RUN_OPENED:
            backing.opened[run_id] = source
        elif kind == EntryKind.RUN_STATE:
            backing.state[run_id] = source
        elif kind == EntryKind.ACTION_APPROVAL_REQUESTED and step is not None:
            backing.requested[(run_id, int(step))] = source
        elif kind == EntryKind.APPROVAL_DECIDED and step is not None:
            backing.decided[(run_id, int(step))] = source
    return backing


_RUN_FIELDS = {
    "agent": ("opened", "agent"),
    "requester": ("opened", "requester"),
    "workflow": ("opened", "workflow"),
    "state": ("state", "state"),
    "reason": ("state", "reason"),
}
_RUN_COMPARED = {"state", "reason"}
"""Fields compared with the table: the others the chain holds redacted, the table not."""

_APPROVAL_FIELDS = {
    "tool": ("requested", "tool"),
    "roles": ("requested", "roles"),
    "status": ("decided", "verdict"),
    "decided_by": ("decided", "approver"),
    "decider_role": ("decided", "approver_role"),
    "decision_reason": ("decided", "reason"),
}
_DECIDED = ("decided_by", "decider_role", "decision_reason")


def back_run(line: dict[str, Any], backing: Backing) -> list[Discrepancy]:
    """Replace ``line``'s fields with the chain's; the table's disagreements."""
    sources = {
        "opened": backing.opened.get(line["id"]),
        "state": backing.state.get(line["id"]),
    }
    return _back(line, f"run {line['id']}", sources, _RUN_FIELDS, _RUN_COMPARED)


def back_approval(line: dict[str, Any], backing: Backing) -> list[Discrepancy]:
    key = (line["run_id"], int(line["step"]))
    decided = backing.decided.get(key)
    sources = {"requested": backing.requested.get(key), "decided": decided}
    what = f"approval {line['id']}"
    found = _back(line, what, sources, _APPROVAL_FIELDS, set(_APPROVAL_FIELDS))
    if decided is None:
        # Nobody's decision is in the chain: the table may name nobody either.
        for name in _DECIDED:
            if line.get(name) is not None:
                found.append(Discrepancy(what, name, line[name], None, None))
                line[name] = None
        if line.get("status") in ("approved", "denied"):
            found.append(Discrepancy(what, "status", line["status"], None, None))
        line["unbacked"] = [*line["unbacked"], "status"]  # pending or expired: not in the chain
    return found


def _back(
    line: dict[str, Any],
    what: str,
    sources: Mapping[str, _Source | None],
    fields: Mapping[str, tuple[str, str]],
    compared: set[str],
) -> list[Discrepancy]:
    found = []
    unbacked = []
    for name, (which, key) in fields.items():
        source = sources.get(which)
        if source is None or source.payload is None:
            if source is None and which == "decided":
                continue  # settled by the caller: nobody decided
            unbacked.append(name)
            continue
        value = source.payload.get(key)
        if name in compared and line.get(name) != value:
            found.append(Discrepancy(what, name, line.get(name), value, source.seq))
        line[name] = value
    line["backed_by"] = sorted({s.seq for s in sources.values() if s is not None})
    line["unbacked"] = unbacked
    return found


def check_lines(
    runs: Iterable[dict[str, Any]], approvals: Iterable[dict[str, Any]], backing: Backing
) -> list[Discrepancy]:
    """Where a bundle's run and approval lines differ from what its chain backs."""
    found: list[Discrepancy] = []
    for what, lines, back in (("run", runs, back_run), ("approval", approvals, back_approval)):
        for line in lines:
            derived = dict(line)
            back(derived, backing)
            found.extend(
                Discrepancy(
                    f"{what} {line.get('id')}", name, line.get(name), derived.get(name), None
                )
                for name in sorted(set(derived) | set(line))
                if line.get(name) != derived.get(name)
            )
    return found
