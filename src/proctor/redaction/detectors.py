"""Detectors of sensitive values in free text, each returning spans.

Standard library only, on purpose. ``presidio`` needs spaCy models fetched from
the network, which proctor must not do at run time; ``phonenumbers`` and
``python-stdnum`` are sound but would be new dependencies for what a few
regular expressions and checksums (Luhn, ISO 7064 mod 97) do here. Every
detector favours precision on what proctor itself stores: sha256 digests,
proctor ids (``run_…``), UUIDs, order ids, amounts, dates and tracking numbers
are left alone.

A detector is a function ``str -> list[Span]``. :func:`detect` runs them all in
priority order and keeps, of overlapping spans, the one found first.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Final, NamedTuple

__all__ = [
    "DETECTORS",
    "KINDS",
    "Span",
    "detect",
    "find_cards",
    "find_emails",
    "find_ibans",
    "find_jwts",
    "find_phones",
    "find_secrets",
    "find_ssns",
    "find_tokens",
    "iban_valid",
    "luhn_valid",
    "shannon_entropy",
]


class Span(NamedTuple):
    """A sensitive value at ``text[start:end]``."""

    start: int
    end: int
    kind: str


Detector = Callable[[str], list[Span]]


def _spans(
    pattern: re.Pattern[str], text: str, kind: str, keep: Callable[[str], bool]
) -> list[Span]:
    """Matches that pass ``keep``; after a rejected match the search resumes just past its start."""
    found: list[Span] = []
    m = pattern.search(text)
    while m is not None:
        if keep(m.group()):
            found.append(Span(m.start(), m.end(), kind))
            m = pattern.search(text, m.end())
        else:
            m = pattern.search(text, m.start() + 1)
    return found


def _always(_: str) -> bool:
    return True


# --- email -------------------------------------------------------------------

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(
    rf"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{{0,63}}@(?:{_LABEL}\.)+[A-Za-z]{{2,24}}(?![\w-])"
)


def find_emails(text: str) -> list[Span]:
    """Addresses ``local@domain.tld``; a sentence's closing period is not taken."""
    if "@" not in text:
        return []
    return _spans(_EMAIL, text, "email", _always)


# --- phone -------------------------------------------------------------------

# Separators are required in national formats, so bare digit runs (order
# numbers, tracking numbers, amounts) never match. A ``#``, ``/``, word
# character or hyphen just before the number marks a reference, not a phone.
_PHONE_INTL = re.compile(
    r"(?<![\w#/+-])\+[1-9]\d{0,2}(?:[ .-]?\(\d{1,4}\)|[ .-]?\d{1,5}){1,6}(?![\w-]|[.]\d)"
)
_PHONE_NATIONAL = re.compile(
    r"(?<![\w#/.+-])(?<!\d[ .-])(?:"
    r"(?:1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}"  # NANP: (415) 555-0100, 415.555.0100
    r"|0\d(?:[ .]\d{2}){4}"  # FR: 01 42 68 53 00
    r"|0\d{2,4} \d{3,4} \d{3,4}"  # UK and others: 020 7946 0958
    r")(?![\w-]|[.,]\d| \d)"
)


def _phone_digits_ok(candidate: str) -> bool:
    return 8 <= sum(c.isdigit() for c in candidate) <= 15


def _international(text: str) -> list[Span]:
    found: list[Span] = []
    for m in _PHONE_INTL.finditer(text):
        candidate = m.group()
        # Numbers that run on into the next figure: give back whole groups.
        while sum(c.isdigit() for c in candidate) > 15 and " " in candidate:
            candidate = candidate.rsplit(" ", 1)[0]
        if _phone_digits_ok(candidate):
            found.append(Span(m.start(), m.start() + len(candidate), "phone"))
    return found


def find_phones(text: str) -> list[Span]:
    """International ``+CC …`` numbers (8–15 digits) and separated national formats."""
    found = _international(text)
    found += _spans(_PHONE_NATIONAL, text, "phone", _phone_digits_ok)
    return found


# --- payment card ------------------------------------------------------------

# A group just after an IBAN's ``CC00`` belongs to the IBAN.
_CARD = re.compile(
    r"(?<![\w-])(?<![A-Z]{2}\d\d[ -])(?:"
    r"\d{4}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?"  # 4-4-4-4(-3)
    r"|\d{4}([ -])\d{6}\2\d{4,5}"  # 4-6-5 (Amex, Diners)
    r"|\d{13,19}"
    r")(?![\w-])"
)
# Issuer prefixes of the major networks and the lengths they issue.
_CARD_NETWORKS: Final = (
    (re.compile(r"3[47]"), range(15, 16)),  # Amex
    (re.compile(r"4"), (13, 16, 19)),  # Visa
    (re.compile(r"5[1-5]|2(?:22[1-9]|2[3-9]|[3-6]\d|7[01]|720)"), range(16, 17)),  # Mastercard
    (re.compile(r"6(?:011|4[4-9]|5)"), range(16, 20)),  # Discover
    (re.compile(r"35(?:2[89]|[3-8])"), range(16, 20)),  # JCB
    (re.compile(r"3(?:0[0-5]|[689])"), range(14, 20)),  # Diners
    (re.compile(r"62"), range(16, 20)),  # UnionPay
    (re.compile(r"5[06-8]|6[37]"), range(13, 20)),  # Maestro
)


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check of a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_ok(candidate: str) -> bool:
    digits = candidate.replace(" ", "").replace("-", "")
    issued = any(p.match(digits) and len(digits) in n for p, n in _CARD_NETWORKS)
    return issued and len(set(digits)) > 1 and luhn_valid(digits)


def find_cards(text: str) -> list[Span]:
    """13–19 digits, grouped by spaces or dashes or not at all: Luhn-valid, of a known network."""
    return _spans(_CARD, text, "card", _card_ok)


# --- IBAN --------------------------------------------------------------------

_IBAN_LENGTHS: Final[dict[str, int]] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2})(\d{2})")


def iban_valid(iban: str) -> bool:
    """Country length and the ISO 7064 mod-97 check of a compact IBAN."""
    if _IBAN_LENGTHS.get(iban[:2]) != len(iban) or not iban.isalnum():
        return False
    rearranged = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def _iban_end(text: str, start: int, length: int) -> int | None:
    """Where an IBAN of ``length`` characters starting at ``start`` ends, single spaces allowed."""
    count, i = 0, start
    while count < length and i < len(text):
        c = text[i]
        if c.isascii() and (c.isdigit() or c.isupper()):
            count += 1
        elif not (c == " " and count >= 4 and i + 1 < len(text) and text[i + 1] != " "):
            return None
        i += 1
    if count < length or (i < len(text) and text[i].isalnum()):
        return None
    return i


def find_ibans(text: str) -> list[Span]:
    """IBANs, compact or in groups of four, with a valid country length and check digits."""
    found: list[Span] = []
    for m in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(m.group(1))
        if length is None:
            continue
        end = _iban_end(text, m.start(), length)
        if end is not None and iban_valid(text[m.start() : end].replace(" ", "")):
            found.append(Span(m.start(), end, "iban"))
    return found


# --- US SSN ------------------------------------------------------------------

# Area 000, 666 and 900–999, group 00 and serial 0000 are never issued; two
# numbers published in advertising are excluded too.
_SSN = re.compile(
    r"(?<![\w-])(?!000|666|9\d\d|078-05-1120|219-09-9999)"
    r"\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])"
)


def find_ssns(text: str) -> list[Span]:
    """US social security numbers ``AAA-GG-SSSS`` (dashes or spaces) in issuable ranges."""
    return _spans(_SSN, text, "ssn", _always)


# --- secrets -----------------------------------------------------------------

_SECRET = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"
    r"(?:[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|[A-Za-z0-9+/=\s]*)"
    r"|(?<![\w-])(?:"
    r"sk-(?:proj-|ant-(?:api\d\d-)?)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"  # Slack
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|glpat-[A-Za-z0-9_-]{20}"  # GitLab
    r")(?![\w-])"
)


def find_secrets(text: str) -> list[Span]:
    """Keys with a vendor prefix (``sk-``, ``AKIA``, ``ghp_``, ``xoxb-``…), PEM private keys."""
    return [Span(m.start(), m.end(), "secret") for m in _SECRET.finditer(text)]


_JWT = re.compile(r"(?<![\w-])eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*(?![\w-])")


def _jwt_ok(candidate: str) -> bool:
    header = candidate.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def find_jwts(text: str) -> list[Span]:
    """JSON web tokens: three base64url parts whose header decodes to JSON with ``alg``."""
    return _spans(_JWT, text, "jwt", _jwt_ok)


# --- high-entropy tokens -----------------------------------------------------

_TOKEN = re.compile(r"(?<![A-Za-z0-9_+/-])[A-Za-z0-9_+/-]{24,}={0,2}(?![A-Za-z0-9_+/=-])")
_RUN = re.compile(r"[A-Za-z0-9+=]{16,}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}")
_PROCTOR_ID = re.compile(r"(?:run|apr|aud|wrk|mc)_[0-9a-f]+(?:/[0-9]+)?")  # ids, idempotency keys
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
ENTROPY_THRESHOLD: Final = 3.7
"""Bits per character a token must exceed to be taken for a secret."""


def shannon_entropy(s: str) -> float:
    """Shannon entropy of ``s`` in bits per character."""
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


def _token_ok(candidate: str) -> bool:
    if (
        _HEX_DIGEST.fullmatch(candidate)
        or _PROCTOR_ID.fullmatch(candidate)
        or _UUID.fullmatch(candidate)
        or candidate.startswith("/")
    ):
        return False
    # Keys mix lowercase letters and digits in long unbroken runs (upper-case
    # references and IBAN look-alikes do not); identifiers, pod names
    # and slugs break into short words at ``-``, ``_`` or ``/``.
    return (
        any(c.isdigit() for c in candidate)
        and any(c.islower() for c in candidate)
        and _RUN.search(candidate) is not None
        and shannon_entropy(candidate) > ENTROPY_THRESHOLD
    )


def find_tokens(text: str) -> list[Span]:
    """Opaque tokens: 24+ base64-ish characters of high entropy, but not digests or ids."""
    return _spans(_TOKEN, text, "token", _token_ok)


# --- all of them -------------------------------------------------------------

DETECTORS: Final[dict[str, Detector]] = {
    "secret": find_secrets,
    "jwt": find_jwts,
    "iban": find_ibans,
    "card": find_cards,
    "ssn": find_ssns,
    "email": find_emails,
    "token": find_tokens,
    "phone": find_phones,
}
"""The detector of each kind, in priority order: of overlapping spans, the earlier kind's wins."""

KINDS: Final = tuple(DETECTORS)
"""Every kind a detector reports."""


def _resolve(spans: Iterable[Span]) -> list[Span]:
    kept: list[Span] = []
    for span in spans:
        if all(span.end <= k.start or span.start >= k.end for k in kept):
            kept.append(span)
    return sorted(kept)


def detect(text: str, detectors: Iterable[Detector] = DETECTORS.values()) -> list[Span]:
    """Non-overlapping spans of every sensitive value in ``text``, in order."""
    return _resolve(span for d in detectors for span in d(text))
