"""Where a proposed argument came from, for policies to see as ``context.provenance``.

Each argument gets one verdict:

- ``trusted``: the requester's own words hold it (the request, later trusted turns);
- ``known``: it equals a value of a record a trusted system returned: an identifier
  (an order id from an order look-up, an address on file), or another record value
  (a total, a status) that no outside content repeats;
- ``untrusted``: outside content holds it (an email's body, a web page, a chat
  message): the words of whoever wrote that content, maybe an attacker;
- ``ungrounded``: no text the run was given holds it: the model made it up;
- ``unknown``: too short to say (``"A"``, ``7``, ``true``), or the run has no
  request yet to ground it in.

The first of these that applies wins, in this order: the requester's words, then
identifiers of records, then outside content, then other record values. A tool
declares what of its result is outside content (``trust=``, ``untrusted=``) and which
record fields are identifiers (``identifiers=``, and every ``id`` or ``*_id``).
Matching is on decoded text (not JSON), with case and runs of whitespace ignored;
numbers match as whole numbers ("$900" and ``900.00`` are one value, the ``07`` of a
date is not ``7``). A list or object argument takes the worst verdict of its members.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from proctor.tools import Tool, Trust

TRUSTED, KNOWN, UNTRUSTED, UNGROUNDED, UNKNOWN = (
    "trusted",
    "known",
    "untrusted",
    "ungrounded",
    "unknown",
)
VERDICTS = (TRUSTED, KNOWN, UNTRUSTED, UNGROUNDED, UNKNOWN)
_WORST_FIRST = (UNTRUSTED, UNGROUNDED, UNKNOWN, KNOWN, TRUSTED)

_MIN_TEXT = 4  # shorter values ("yes", "A-1") prove nothing about where they came from
# A whole number: not part of a word, a date, a time, a version or an id.
_NUMBER = re.compile(
    r"(?<![\w.:/\-])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w:/\-]|\.\d)|"
    r"(?<![\w.:/\-,])\d+(?:\.\d+)?(?![\w:/\-]|[.,]\d)"
)


def normalized(text: str) -> str:
    """Text as it is compared: compatibility form, case folded, whitespace runs as one."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _numbers(text: str) -> set[Decimal]:
    out = set()
    for match in _NUMBER.findall(text):
        try:
            out.add(Decimal(match.replace(",", "")).normalize())
        except InvalidOperation:
            continue
    return out


def _as_number(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).normalize()
    if isinstance(value, str):
        stripped = value.strip().lstrip("$€£").replace(",", "")
        if re.fullmatch(r"\d+(?:\.\d+)?", stripped):
            return Decimal(stripped).normalize()
    return None


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every scalar of a JSON value with its path (``a.b``, ``items[].name``)."""
    if isinstance(value, Mapping):
        for key, member in value.items():
            yield from _leaves(member, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for member in value:
            yield from _leaves(member, f"{path}[]")
    else:
        yield path, value


def _identifier(path: str, declared: tuple[str, ...]) -> bool:
    name = path.rsplit(".", 1)[-1].removesuffix("[]")
    return name == "id" or name.endswith("_id") or _under(path, declared)


def _under(path: str, declared: tuple[str, ...]) -> bool:
    return any(path == d or path.startswith(d + ".") or path.startswith(d + "[]") for d in declared)


class Provenance:
    """What the run was told by its requester, what trusted records said, and what
    outside content said."""

    def __init__(self) -> None:
        self._requester: list[str] = []
        self._requester_numbers: set[Decimal] = set()
        self._ids: set[str] = set()
        self._id_numbers: set[Decimal] = set()
        self._records: set[str] = set()
        self._record_numbers: set[Decimal] = set()
        self._content: list[str] = []
        self._content_numbers: set[Decimal] = set()

    @property
    def grounding(self) -> bool:
        """Whether the run was given its requester's words to ground arguments in."""
        return bool(self._requester)

    def requester(self, text: str) -> None:
        """Words of whoever the run acts for: the request, a later trusted turn."""
        self._requester.append(normalized(text))
        self._requester_numbers |= _numbers(text)

    def observe(self, t: Tool, result: Any) -> None:
        """A result of ``t``: its outside content and its records, as ``t`` declares them."""
        whole_content = t.trust is Trust.UNTRUSTED and not t.untrusted
        for path, leaf in _leaves(result):
            if whole_content or _under(path, t.untrusted):
                self._content_leaf(leaf)
            elif _identifier(path, t.identifiers):
                self._record_leaf(leaf, self._ids, self._id_numbers)
            else:
                self._record_leaf(leaf, self._records, self._record_numbers)

    def _content_leaf(self, leaf: Any) -> None:
        if isinstance(leaf, str):
            self._content.append(normalized(leaf))
            self._content_numbers |= _numbers(leaf)
        elif (number := _as_number(leaf)) is not None:
            self._content_numbers.add(number)

    @staticmethod
    def _record_leaf(leaf: Any, texts: set[str], numbers: set[Decimal]) -> None:
        number = _as_number(leaf)
        if number is not None:
            numbers.add(number)
        if isinstance(leaf, str):
            texts.add(normalized(leaf))

    def of(self, args: Mapping[str, Any]) -> dict[str, str]:
        """The verdict of each argument."""
        return {name: self._verdict(value) for name, value in args.items()}

    def _verdict(self, value: Any) -> str:
        if isinstance(value, Mapping | list | tuple):
            members = list(value.values() if isinstance(value, Mapping) else value)
            if not members:
                return UNKNOWN
            found = {self._verdict(member) for member in members}
            return next(v for v in _WORST_FIRST if v in found)
        number = _as_number(value)
        if number is not None:
            if abs(number) < 10 and number == number.to_integral_value():
                return UNKNOWN  # a single digit: too common to say where it came from
            return self._first(
                number in self._requester_numbers,
                number in self._id_numbers,
                number in self._content_numbers,
                number in self._record_numbers,
            )
        if not isinstance(value, str):
            return UNKNOWN
        needle = normalized(value)
        if len(needle) < _MIN_TEXT:
            return UNKNOWN
        return self._first(
            any(needle in text for text in self._requester),
            needle in self._ids,
            any(needle in text for text in self._content),
            needle in self._records,
        )

    def _first(self, said: bool, identifies: bool, outside: bool, recorded: bool) -> str:
        if said:
            return TRUSTED
        if identifies:
            return KNOWN
        if outside:
            return UNTRUSTED
        if recorded:
            return KNOWN
        # Grounding needs a request to ground in: without one, nothing counts as made up.
        return UNGROUNDED if self.grounding else UNKNOWN


def flagged(verdicts: Mapping[str, str], t: Tool) -> dict[str, list[str]]:
    """The sets policies test instead of one guard per argument (sorted lists; Cedar sets)."""
    untrusted = sorted(name for name, v in verdicts.items() if v == UNTRUSTED)
    return {
        "untrusted_args": untrusted,
        "untrusted_sinks": [name for name in untrusted if name in t.sinks],
        "untrusted_targets": [name for name in untrusted if name in t.targets],
        "ungrounded_args": sorted(name for name, v in verdicts.items() if v == UNGROUNDED),
    }
