"""Phone numbers: candidates of bounded length, confirmed by libphonenumber's metadata.

A candidate is a ``+`` or a digit, then at most 26 digits and separators, ending
on a digit. Numbers written with a ``+`` are confirmed in every region
libphonenumber knows; national numbers (no ``+``) must carry a separator and are
confirmed in :data:`NATIONAL_REGIONS`, with the trunk prefix (``0``) where the
region has one. A candidate that is not a number gives back its trailing groups
(``020 7946 0958 4111`` is a number and a figure) when it starts like a number
(``+``, a trunk ``0``, a bracket); the search moves on past it, so each character
belongs to one candidate and the work is linear.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Final

import phonenumbers

from proctor.redaction._span import Span

__all__ = ["NATIONAL_REGIONS", "find_phones"]

NATIONAL_REGIONS: Final = (
    "US", "GB", "DE", "FR", "IT", "ES", "NL", "BE", "AT", "CH", "IE", "SE", "AU", "NZ", "IN",
    "JP", "ZA",
)  # fmt: skip
"""Regions whose numbers are also recognised in national format (without ``+``)."""

# A ``#``, ``/``, word character or hyphen just before marks a reference, not a phone;
# a national number is not a part of an amount, a decimal, a time, an assignment, or
# the tail of a longer run of digit groups (a tracking number).
_CANDIDATE = re.compile(
    r"(?=[+(\d])(?:(?<![\w+#])\+|(?<![\w+#/.,:=$€£%-])(?<!\d[ ./-]))"
    r"\(?\d[\d ()./-]{4,24}\d(?!\w|[.,/:-]\d)"
)
_SEPARATORS = re.compile(r"[ ()./-]+")
# Shapes of other things: an IPv4 address, a date, a US social security number.
_NOT_PHONE = re.compile(
    r"\d{1,3}(?:\.\d{1,3}){3}|\d{1,2}([/.-])\d{1,2}\1\d{2,4}|\d{4}([/.-])\d{1,2}\2\d{1,2}"
    r"|\d{3}([ -])\d{2}\3\d{4}"
)
# Where a candidate may give back groups: a number marked as one (``+``, a trunk ``0``,
# an area code in brackets, the NANP ``1``).
_MARKED = re.compile(r"[+0(]|1[ .-]")
_TRIMS: Final = 3
_MIN_DIGITS, _MAX_DIGITS = 7, 15
_MIN_NATIONAL_DIGITS = 9  # shorter runs of grouped digits are part numbers, not phones


# The numbers are built from the metadata directly: ``phonenumbers.parse`` costs more
# than the rest of the detection together, and a candidate is already digits.
def _national_table() -> tuple[tuple[int, str, frozenset[int]], ...]:
    table = []
    for region in NATIONAL_REGIONS:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        assert metadata is not None
        assert metadata.general_desc is not None
        assert metadata.country_code is not None
        lengths = frozenset(metadata.general_desc.possible_length or ())
        table.append((metadata.country_code, metadata.national_prefix or "", lengths))
    return tuple(table)


_NATIONAL: Final = _national_table()


@cache
def _calling_code(cc: int) -> tuple[frozenset[int], str] | None:
    """Possible national lengths and trunk prefix of calling code ``cc``, None if unassigned."""
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(cc)
    if not regions:
        return None
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(cc, regions[0])
    if metadata is None or metadata.general_desc is None:
        return None
    return frozenset(metadata.general_desc.possible_length or ()), metadata.national_prefix or ""


def _possible_international(digits: str) -> bool:
    """A calling code then a national number of a length its country issues (a trunk
    prefix after the calling code, as in ``+44 (0)20``, is left out, as libphonenumber does).
    The ``+`` says it is a phone number: fictional and newly opened ranges count too."""
    for n in (1, 2, 3):
        found = _calling_code(int(digits[:n]))
        if found is not None:
            lengths, trunk = found
            national = digits[n:]
            if trunk and national.startswith(trunk) and len(national) not in lengths:
                national = national[len(trunk) :]
            return len(national) in lengths
    return False


def _valid_national(cc: int, national: str) -> bool:
    number = phonenumbers.PhoneNumber(country_code=cc, national_number=int(national))
    zeros = len(national) - len(national.lstrip("0"))
    if zeros:  # Italy keeps its leading zero
        number.italian_leading_zero = True
        number.number_of_leading_zeros = zeros
    return bool(phonenumbers.is_valid_number(number))


@lru_cache(maxsize=4096)
def _is_number(candidate: str) -> bool:
    digits = "".join(c for c in candidate if c.isdigit())
    if not _MIN_DIGITS <= len(digits) <= _MAX_DIGITS:
        return False
    if candidate.startswith("+"):
        return _possible_international(digits)
    groups = _SEPARATORS.split(candidate.strip("()"))
    if (
        len(digits) < _MIN_NATIONAL_DIGITS
        or len(groups) < 2
        or (len(groups[0]) == 1 and groups[0] != "1")
        or len(groups[-1]) == 1
        or _NOT_PHONE.fullmatch(candidate)
    ):
        return False  # a part number, a bare run of digits, an ISBN-10, an address, a date, an SSN
    for cc, trunk, lengths in _NATIONAL:
        if trunk == "0" and not digits.startswith("0"):
            continue
        national = digits[len(trunk) :] if trunk and digits.startswith(trunk) else digits
        if len(national) in lengths and _valid_national(cc, national):
            return True
    return False


def _number_in(candidate: str) -> str | None:
    """The longest number ``candidate`` starts with, giving back at most a few groups."""
    trims = _TRIMS if _MARKED.match(candidate) else 0
    for _ in range(trims + 1):
        if _is_number(candidate):
            return candidate
        cut = _SEPARATORS.search(candidate[::-1])
        if cut is None:
            return None
        candidate = candidate[: len(candidate) - cut.end()]
    return None


def find_phones(text: str) -> list[Span]:
    """Numbers with a ``+`` of every region; national ones of :data:`NATIONAL_REGIONS`."""
    found: list[Span] = []
    m = _CANDIDATE.search(text)
    while m is not None:
        number = _number_in(m.group())
        if number is not None:
            found.append(Span(m.start(), m.start() + len(number), "phone"))
            m = _CANDIDATE.search(text, m.start() + len(number))
            continue
        m = _CANDIDATE.search(text, m.end())
    return found
