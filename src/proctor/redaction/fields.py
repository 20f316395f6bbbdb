"""Redaction of declared sensitive fields before anything is stored."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

MASK = "[redacted]"


def redact_fields(value: Any, fields: frozenset[str]) -> Any:
    """A copy of ``value`` where every mapping key named in ``fields`` is masked, at any depth."""
    if not fields:
        return value
    if isinstance(value, Mapping):
        return {
            k: (MASK if k in fields and v is not None else redact_fields(v, fields))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact_fields(v, fields) for v in value]
    return value
