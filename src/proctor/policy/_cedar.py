"""Python values and proctor requests in Cedar's JSON shapes.

Cedar has no null and no floats. A ``None`` in a record drops the key (so
``context.args has x`` is false), floats and ``Decimal`` become the ``decimal``
extension type (four fractional digits, rounded half-even), lists become sets.
Timezone-aware datetimes and dates become ``datetime`` (to the millisecond),
timedeltas ``duration``, enums their value and UUIDs their text.
Keys Cedar's JSON reserves for entity and extension escapes are refused, so a
value from a tool argument can never turn into an entity reference.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from enum import Enum
from typing import Final
from uuid import UUID

from proctor.policy.decision import PolicyRequest, Principal

EFFECT_CLASSES: Final = ("read", "write", "destructive", "irreversible")
"""Action groups: every tool's action is a member of the group of its effect class."""

_LONG_MIN: Final = -(2**63)
_LONG_MAX: Final = 2**63 - 1
_DECIMAL_STEP: Final = Decimal("0.0001")
_DECIMAL_MIN: Final = Decimal("-922337203685477.5808")
_DECIMAL_MAX: Final = Decimal("922337203685477.5807")
_DECIMAL_ROUNDABLE: Final = (_DECIMAL_MIN - 1, _DECIMAL_MAX + 1)
_DECIMAL_CONTEXT: Final = Context(prec=60)
_RESERVED_KEYS: Final = frozenset({"__entity", "__extn", "__expr"})
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"))
_MILLISECOND: Final = timedelta(milliseconds=1)

CedarJSON = bool | int | str | Sequence["CedarJSON"] | Mapping[str, "CedarJSON"]


class CedarValueError(ValueError):
    """A value that has no Cedar counterpart; the message starts with its path."""


def cedar_value(value: object, path: str) -> CedarJSON:
    """``value`` as Cedar JSON; ``path`` (e.g. ``args.amount``) names it in errors."""
    if isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        if not _LONG_MIN <= value <= _LONG_MAX:
            raise CedarValueError(f"{path}: {value} does not fit Cedar's 64-bit Long")
        return value
    if isinstance(value, float | Decimal):
        return _extension("decimal", cedar_decimal(value, path))
    if isinstance(value, Mapping):
        return cedar_record(value, path)
    if isinstance(value, list | tuple | set | frozenset):
        return [_set_element(item, f"{path}[{n}]") for n, item in enumerate(value)]
    return _other_value(value, path)


def _other_value(value: object, path: str) -> CedarJSON:
    """Values pydantic's ``model_dump()`` leaves as objects: times, enums, UUIDs."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise CedarValueError(f"{path}: a datetime needs a timezone to be compared")
        utc = value.astimezone(UTC)
        return _extension("datetime", f"{utc:%Y-%m-%dT%H:%M:%S}.{utc.microsecond // 1000:03d}Z")
    if isinstance(value, date):
        return _extension("datetime", f"{value:%Y-%m-%d}")
    if isinstance(value, timedelta):
        return _extension("duration", f"{value // _MILLISECOND}ms")
    if isinstance(value, Enum):
        return cedar_value(value.value, path)
    if isinstance(value, UUID):
        return str(value)
    raise CedarValueError(f"{path}: a {type(value).__name__} has no Cedar value")


def _extension(function: str, argument: str) -> CedarJSON:
    return {"__extn": {"fn": function, "arg": argument}}


def _set_element(value: object, path: str) -> CedarJSON:
    if value is None:
        raise CedarValueError(f"{path}: a set cannot hold None (Cedar has no null)")
    return cedar_value(value, path)


def cedar_record(values: Mapping[str, object], path: str) -> dict[str, CedarJSON]:
    """A mapping as a Cedar record; keys whose value is ``None`` are left out."""
    record: dict[str, CedarJSON] = {}
    for key, value in values.items():
        if not isinstance(key, str):
            raise CedarValueError(f"{path}: record keys must be strings, not {key!r}")
        if key in _RESERVED_KEYS:
            raise CedarValueError(f"{path}.{key}: `{key}` is reserved by Cedar's JSON format")
        if value is not None:
            record[key] = cedar_value(value, f"{path}.{key}")
    return record


def cedar_decimal(value: float | Decimal, path: str) -> str:
    """The argument of Cedar's ``decimal(...)`` for ``value``, e.g. ``"12.3400"``."""
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        raise CedarValueError(f"{path}: {value} is not a finite number")
    if not _DECIMAL_ROUNDABLE[0] <= number <= _DECIMAL_ROUNDABLE[1]:
        raise CedarValueError(f"{path}: {value} is outside the range of Cedar's decimal")
    try:
        rounded = number.quantize(_DECIMAL_STEP, rounding=ROUND_HALF_EVEN, context=_DECIMAL_CONTEXT)
    except InvalidOperation as exc:  # pragma: no cover - the range check above prevents it
        raise CedarValueError(f"{path}: {value} cannot be a Cedar decimal") from exc
    if not _DECIMAL_MIN <= rounded <= _DECIMAL_MAX:
        raise CedarValueError(f"{path}: {value} is outside the range of Cedar's decimal")
    return f"{rounded.copy_abs() if rounded.is_zero() else rounded:f}"


def number_problem(value: int | float | Decimal) -> str | None:
    """Why Cedar cannot hold ``value`` exactly (a ``long`` for an int, a ``decimal`` of four
    places for a float or Decimal), or None when it can. A value Cedar would round or refuse
    is one the policy would not see as the tool receives it."""
    if isinstance(value, int):
        if not _LONG_MIN <= value <= _LONG_MAX:
            return f"{value} does not fit the policy engine's 64-bit integer (long)"
        return None
    number = Decimal(repr(value)) if isinstance(value, float) else value
    if not number.is_finite():
        return f"{value} is not a finite number"
    if not _DECIMAL_MIN <= number <= _DECIMAL_MAX:
        return (
            f"{value} is outside the range of the policy engine's decimal "
            f"({_DECIMAL_MIN} to {_DECIMAL_MAX})"
        )
    if number.quantize(_DECIMAL_STEP, context=_DECIMAL_CONTEXT) != number:
        return (
            f"{value} has more precision than the policy engine's decimal: at most 4 decimal places"
        )
    return None


def uid(entity_type: str, entity_id: str) -> dict[str, str]:
    return {"type": entity_type, "id": entity_id}


def principal_uid(principal: Principal) -> dict[str, str]:
    return uid("Agent", principal.agent)


def action_uid(tool: str) -> dict[str, str]:
    return uid("Action", tool)


def resource_uid(request: PolicyRequest) -> dict[str, str]:
    if request.resource is None:
        return uid("Tool", request.tool)
    return uid(request.resource.type, request.resource.id)


def principal_entity(principal: Principal, tenant: CedarJSON | None = None) -> CedarJSON:
    """``Agent::"<agent>"`` with its role and tenant, a member of ``Role::"<role>"``.

    ``tenant`` overrides the principal's tenant value (partial evaluation passes an unknown).
    """
    return {
        "uid": principal_uid(principal),
        "attrs": {
            "role": principal.role,
            "tenant": principal.tenant if tenant is None else tenant,
        },
        "parents": [uid("Role", principal.role)],
    }


def action_entity(tool: str, effect_class: str | None) -> CedarJSON:
    """``Action::"<tool>"``, a member of ``Action::"<effect_class>"`` when one is given."""
    if tool in EFFECT_CLASSES:
        raise CedarValueError(f"tool: `{tool}` is the name of an action group; rename the tool")
    if effect_class is not None and effect_class not in EFFECT_CLASSES:
        raise CedarValueError(
            f"effect_class: `{effect_class}` is not one of {', '.join(EFFECT_CLASSES)}"
        )
    parents = [] if effect_class is None else [action_uid(effect_class)]
    return {"uid": action_uid(tool), "attrs": {}, "parents": parents}


def dumps(value: CedarJSON) -> str:
    """Compact JSON; one encoder, built once (``json.dumps`` with options builds one per call)."""
    return _ENCODER.encode(value)
