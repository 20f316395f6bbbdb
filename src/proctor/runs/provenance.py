"""Where a proposed argument came from: trusted text, untrusted content, or nowhere.

An argument is ``untrusted`` when its value appears in untrusted content (the
output of a tool marked untrusted: customer messages, email bodies, web pages)
and not in trusted text (the request the run was given, and the output of
trusted tools). Once the run has been given its request, a value found in
neither is ``ungrounded``: the model made it up (an invented id, an amount off).
Numbers are compared as numbers ("$900" and ``900.00`` are one value); text
case-insensitively, when long enough to mean something. Policies see the result
as ``context.provenance.<argument>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from proctor.jsonvalue import canonical_json

TRUSTED, UNTRUSTED, UNGROUNDED = "trusted", "untrusted", "ungrounded"

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


def _text(content: Any) -> str:
    return content if isinstance(content, str) else canonical_json(content)


class Provenance:
    """What the run was told by someone it trusts, and what untrusted content said."""

    def __init__(self) -> None:
        self._trusted: list[str] = []
        self._untrusted: list[str] = []
        self._trusted_numbers: set[Decimal] = set()
        self._untrusted_numbers: set[Decimal] = set()

    @property
    def grounding(self) -> bool:
        """Whether the run was given trusted text to ground arguments in."""
        return bool(self._trusted)

    def trust(self, content: Any) -> None:
        text = _text(content)
        self._trusted.append(text.lower())
        self._trusted_numbers |= _numbers(text)

    def distrust(self, content: Any) -> None:
        text = _text(content)
        self._untrusted.append(text.lower())
        self._untrusted_numbers |= _numbers(text)

    def of(self, args: Mapping[str, Any]) -> dict[str, str]:
        """``trusted``, ``untrusted`` or ``ungrounded`` for each argument."""
        return {name: self._source(value) for name, value in args.items()}

    def _source(self, value: Any) -> str:
        if isinstance(value, Mapping | list | tuple):
            members = value.values() if isinstance(value, Mapping) else value
            found = {self._source(member) for member in members}
            return next((s for s in (UNTRUSTED, UNGROUNDED) if s in found), TRUSTED)
        number = _as_number(value)
        if number is not None:
            return self._verdict(number in self._trusted_numbers, number in self._untrusted_numbers)
        if not isinstance(value, str) or len(value.strip()) < _MIN_TEXT:
            return TRUSTED  # too short to say where it came from
        needle = value.strip().lower()
        return self._verdict(
            any(needle in text for text in self._trusted),
            any(needle in text for text in self._untrusted),
        )

    def _verdict(self, in_trusted: bool, in_untrusted: bool) -> str:
        if in_trusted:
            return TRUSTED
        if in_untrusted:
            return UNTRUSTED
        # Grounding needs a request to ground in: without one, nothing counts as made up.
        return UNGROUNDED if self.grounding else TRUSTED
