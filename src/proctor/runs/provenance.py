"""Where a proposed argument came from: the trusted request, or untrusted content.

An argument is ``untrusted`` when its value appears in untrusted content (the
output of a tool marked untrusted: customer messages, email bodies, web pages)
and not in the trusted request. Numbers are compared as numbers ("$900" and
``900.00`` are one value); text case-insensitively, when long enough to mean
something. Policies see the result as ``context.provenance.<argument>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from proctor.jsonvalue import canonical_json

_NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
_MIN_TEXT = 4  # shorter values ("yes", "A") prove nothing about where they came from


def _numbers(text: str) -> set[Decimal]:
    out = set()
    for match in _NUMBER.findall(text):
        try:
            out.add(Decimal(match.replace(",", "")))
        except InvalidOperation:
            continue
    return out


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return Decimal(value.strip().replace(",", ""))
    return None


class Provenance:
    """What the run was told by someone it trusts, and what untrusted content said."""

    def __init__(self) -> None:
        self._trusted: list[str] = []
        self._untrusted: list[str] = []
        self._trusted_numbers: set[Decimal] = set()
        self._untrusted_numbers: set[Decimal] = set()

    @property
    def has_untrusted(self) -> bool:
        return bool(self._untrusted)

    def trust(self, text: str) -> None:
        self._trusted.append(text.lower())
        self._trusted_numbers |= _numbers(text)

    def distrust(self, content: Any) -> None:
        text = content if isinstance(content, str) else canonical_json(content)
        self._untrusted.append(text.lower())
        self._untrusted_numbers |= _numbers(text)

    def of(self, args: Mapping[str, Any]) -> dict[str, str]:
        """``trusted`` or ``untrusted`` for each argument."""
        return {
            name: "untrusted" if self._untrusted_value(v) else "trusted" for name, v in args.items()
        }

    def _untrusted_value(self, value: Any) -> bool:
        if isinstance(value, Mapping):
            return any(self._untrusted_value(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(self._untrusted_value(v) for v in value)
        number = _as_number(value)
        if number is not None:
            return number in self._untrusted_numbers and number not in self._trusted_numbers
        if not isinstance(value, str) or len(value.strip()) < _MIN_TEXT:
            return False
        needle = value.strip().lower()
        return any(needle in text for text in self._untrusted) and not any(
            needle in text for text in self._trusted
        )
