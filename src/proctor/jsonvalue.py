"""JSON values, and the one canonical encoding that hashes are taken over."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, TypeAlias

import orjson
from pydantic import BaseModel

JSONValue: TypeAlias = (
    str | int | float | bool | Decimal | Sequence["JSONValue"] | Mapping[str, "JSONValue"] | None
)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text; Decimals as strings. Stable across runs.

    orjson writes it (an order of magnitude faster: this runs many times on every
    governed call); the standard library takes over for what orjson refuses, such
    as integers beyond 64 bits, and writes the same form.
    """
    try:
        return orjson.dumps(value, default=_default, option=_ORJSON_OPTIONS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default
        )


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def digest(value: Any) -> str:
    """The sha256 of a value's canonical JSON."""
    return sha256_hex(canonical_json(value))


def to_plain(value: Any) -> Any:
    """A value as plain JSON types (Decimals become strings), for storage."""
    return orjson.loads(canonical_json(value))
