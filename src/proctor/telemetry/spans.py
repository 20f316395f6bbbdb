"""The spans of a run's tree: their shape, their stable ids, and the builder that makes them.

Spans are not recorded on the hot path: everything a span needs is already in
the journal (the run, its steps with their stage timings, its model calls and
approvals). ``proctor.runs.trace`` derives the tree from a run as the read
model gives it, with :class:`SpanTree`, so a crash loses no span and the same
run always gives the same tree, with the same ids.

The tree of one run::

    invoke_agent {agent}            the run, created_at .. ended_at
    ├── chat {model}                each model call (GenAI conventions)
    └── execute_tool {tool}         each governed call
        ├── proctor.decide {tool}   the policy decision
        ├── proctor.approval {tool} the wait for a person, and who decided how
        └── proctor.execute {tool}  the tool itself

Tool arguments and results are never attributes. Free text (reasons, error
messages, approvers' notes) goes through ``redact`` when one is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

AttributeValue = str | bool | int | float | Sequence[str]
Redact = Callable[[str, str], str]
"""``redact(tenant, text) -> text``: what every string attribute passes through."""

SpanKind = Literal["internal", "client"]


@dataclass(frozen=True)
class SpanRecord:
    """One span of a run: where it sits in the tree, when it ran, what it carries."""

    key: str
    """Stable within the run: ``run``, ``model/<id>``, ``step/<n>``, ``step/<n>/decide``…"""
    parent: str | None
    name: str
    kind: SpanKind
    start: datetime
    end: datetime | None
    """``None`` while the span is still open (a run that has not ended, a pending approval)."""
    trace_id: str
    """32 hex digits, the same for every span of the run (derived from the run id)."""
    span_id: str
    """16 hex digits, derived from the run id and ``key``."""
    parent_span_id: str | None
    attributes: dict[str, AttributeValue] = field(default_factory=dict)
    error: str | None = None
    """``error.type`` when the operation failed; the span's status is then ERROR."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form, for the service's run detail."""
        return {
            "key": self.key,
            "parent": self.parent,
            "name": self.name,
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "attributes": {
                k: list(v) if isinstance(v, list | tuple) else v for k, v in self.attributes.items()
            },
            "error": self.error,
        }


SpanSource = Callable[[Redact | None], Sequence[SpanRecord]]
"""Derives one run's span tree, every string through the ``Redact`` given: telemetry
calls it when it exports the run, so a failure to derive is its to count."""


def trace_id_of(run_id: str) -> str:
    """The run's trace id: 128 bits of SHA-256 of its id (never all zeros)."""
    value = hashlib.sha256(f"proctor-trace\x00{run_id}".encode()).hexdigest()[:32]
    return value if int(value, 16) else "1".zfill(32)


def span_id_of(run_id: str, key: str) -> str:
    value = hashlib.sha256(f"proctor-span\x00{run_id}\x00{key}".encode()).hexdigest()[:16]
    return value if int(value, 16) else "1".zfill(16)


class SpanTree:
    """Builds one run's spans, parents first: stable ids, string attributes through
    ``redact``, and every span kept inside its parent."""

    def __init__(self, run_id: str, tenant: str, redact: Redact | None) -> None:
        self.run_id = run_id
        self.trace_id = trace_id_of(run_id)
        self.tenant = tenant
        self._redact = redact
        self.spans: list[SpanRecord] = []
        self._by_key: dict[str, SpanRecord] = {}
        self._redacted: dict[str, str] = {}

    def text(self, value: str) -> str:
        if self._redact is None:
            return value
        # Run id, tenant, workflow and tool names recur on every span: redact each once.
        done = self._redacted.get(value)
        if done is None:
            done = self._redacted[value] = self._redact(self.tenant, value)
        return done

    def add(
        self,
        key: str,
        parent: str | None,
        name: str,
        kind: SpanKind,
        start: datetime,
        end: datetime | None,
        attributes: Mapping[str, AttributeValue | None],
        error: str | None = None,
    ) -> None:
        attrs: dict[str, AttributeValue] = {}
        for k, v in attributes.items():
            if v is None:
                continue
            if isinstance(v, str):
                attrs[k] = self.text(v)
            elif isinstance(v, list | tuple):
                attrs[k] = [self.text(str(x)) for x in v]
            else:
                attrs[k] = v
        # Durations are monotonic, timestamps wall-clock (and a test's clock may stand
        # still): keep every span inside its parent and never negative.
        up = self._by_key.get(parent) if parent else None
        if up is not None:
            start = max(start, up.start)
            if up.end is not None:
                start = min(start, up.end)
                end = up.end if end is None else min(end, up.end)
        if end is not None and end < start:
            end = start
        record = SpanRecord(
            key=key,
            parent=parent,
            name=self.text(name),
            kind=kind,
            start=start,
            end=end,
            trace_id=self.trace_id,
            span_id=span_id_of(self.run_id, key),
            parent_span_id=span_id_of(self.run_id, parent) if parent else None,
            attributes=attrs,
            error=error,
        )
        self.spans.append(record)
        self._by_key[key] = record
