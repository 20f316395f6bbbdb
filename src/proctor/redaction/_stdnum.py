"""IBANs and US social security numbers, confirmed by ``python-stdnum``.

IBANs: a country code (either case) and two check digits start a candidate; it
takes exactly the country's length (the SWIFT registry's, from stdnum) of letters
and digits, in groups separated by single spaces or hyphens; stdnum then checks
the registry's format for the country and the ISO 7064 mod 97 check digits.
Social security numbers: ``AAA-GG-SSSS`` with dashes or spaces anywhere, and nine
bare digits just after a word that names them (``SSN``, ``social security``);
stdnum checks the issuable ranges and the numbers published in advertising.
"""

from __future__ import annotations

import re
from functools import cache

from stdnum import iban as std_iban
from stdnum import numdb
from stdnum.us import ssn as std_ssn

from proctor.redaction._span import Span

__all__ = ["find_ibans", "find_ssns", "iban_valid"]

_IBAN_DB = numdb.get("iban")
_IBAN_START = re.compile(r"(?=[A-Za-z])(?<![A-Za-z0-9])[A-Za-z]{2}\d{2}")
_FIELD = re.compile(r"(\d+)!?[nac]")


@cache
def _iban_length(country: str) -> int | None:
    """The length of a compact IBAN of ``country`` (upper case), or None if it has none."""
    info = _IBAN_DB.info(country)[0][1]
    bban = info.get("bban")
    if not bban:
        return None
    return 4 + sum(int(n) for n in _FIELD.findall(bban))


def iban_valid(iban: str) -> bool:
    """The registry format of the country and the ISO 7064 mod-97 check of a compact IBAN."""
    return bool(std_iban.is_valid(iban, check_country=False)) and (
        _iban_length(iban[:2].upper()) == len(iban)
    )


def _iban_end(text: str, start: int, length: int) -> int | None:
    """Where an IBAN of ``length`` characters starting at ``start`` ends, single separators
    (one kind throughout) allowed after the first four characters."""
    count, i, separator = 0, start, ""
    while count < length and i < len(text):
        c = text[i]
        if c.isascii() and c.isalnum():
            count += 1
        elif c in " -" and count >= 4 and separator in ("", c) and text[i - 1] not in " -":
            separator = c
        else:
            return None
        i += 1
    if count < length or (i < len(text) and text[i].isalnum()):
        return None
    return i


def find_ibans(text: str) -> list[Span]:
    """IBANs, compact or grouped, in either case, of a registry format with valid check digits."""
    found: list[Span] = []
    at = 0
    for m in _IBAN_START.finditer(text):
        if m.start() < at:
            continue
        length = _iban_length(m.group()[:2].upper())
        if length is None:
            continue
        end = _iban_end(text, m.start(), length)
        if end is None:
            continue
        compact = "".join(c for c in text[m.start() : end] if c.isalnum())
        if iban_valid(compact):
            found.append(Span(m.start(), end, "iban"))
            at = end
    return found


_SSN = re.compile(
    r"(?=\d)(?<![\w+-])(?<!\d[ .-])\d{3}([- ])\d{2}\1\d{4}(?![\w-]|[ .-]\d)"
    r"|(?=[sS])(?i:\b(?:ssn|ss\#|soc\.? sec\.?"
    r"|social(?:[ -]security)?(?:[ -](?:number|no\.?|\#))?))"
    r"[^\w\n]{0,4}(?:(?:is|was|number|no|of)\b[^\w\n]{0,3}){0,2}(?P<bare>\d{9})(?![\w-])"
)


def find_ssns(text: str) -> list[Span]:
    """US social security numbers in issuable ranges: separated, or bare after ``SSN``."""
    found: list[Span] = []
    for m in _SSN.finditer(text):
        start, end = m.span("bare") if m.group("bare") else m.span()
        if std_ssn.is_valid(re.sub(r"\D", "", m.group()[start - m.start() : end - m.start()])):
            found.append(Span(start, end, "ssn"))
    return found
