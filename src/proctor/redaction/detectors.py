"""Detectors of sensitive values in free text, each returning spans, in linear time.

Text reaching a detector is often untrusted (a customer's message, a web page, a
tool's answer), so every detector is linear in its input: each pattern either
starts only at the edge of a run of its characters (a look-behind of the same
class) or has bounded quantifiers and bounded look-behind, and every candidate
is checked on a window of bounded size. Overlaps are resolved by merging
sorted lists, never by comparing every pair.

Candidates are found by patterns and confirmed by the libraries made for each
format: ``phonenumbers`` (libphonenumber's metadata, every region) for phone
numbers and ``python-stdnum`` for IBANs (the SWIFT registry's formats and the
ISO 7064 mod 97 check) and US social security numbers. Credentials follow the
keyword list and vendor prefixes of ``detect-secrets``, written as linear
patterns. Everything favours precision on what proctor itself stores: sha256
digests, proctor ids (``run_…``), UUIDs, order ids, amounts, dates, versions and
tracking numbers are left alone.

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
from collections.abc import Iterable
from typing import Final

from proctor.redaction._phones import find_phones
from proctor.redaction._secrets import find_passwords, find_secrets
from proctor.redaction._span import Detector, Span, always, spans
from proctor.redaction._stdnum import find_ibans, find_ssns, iban_valid

__all__ = [
    "DETECTORS",
    "KINDS",
    "Span",
    "detect",
    "find_cards",
    "find_emails",
    "find_ibans",
    "find_jwts",
    "find_passwords",
    "find_phones",
    "find_secrets",
    "find_ssns",
    "find_tokens",
    "iban_valid",
    "luhn_valid",
    "shannon_entropy",
]


# --- email -------------------------------------------------------------------

# RFC 5322 atext (less ``'``, ``=``, ``{``, ``|`` and ``}``, which in logs and code
# quote or assign an address rather than belong to it), with RFC 6531's non-ASCII
# letters and emoji; a quoted local part; a domain of at most ten labels, or an
# address literal. The local part is at most 64 characters and starts at the edge
# of a run of its characters, so no start is tried twice inside a run.
# Combining marks of Latin, Indic and Thai scripts (``\w`` leaves them out).
_MARKS = r"\u0300-\u036f\u0900-\u0dff\u0e00-\u0e7f"
_ATEXT = rf"\w{_MARKS}!#$%&*+/?^`~\u2600-\u27bf\ufe0f\u200d\U0001f000-\U0001faff-"
_LOCAL = rf"(?<![{_ATEXT}.])[{_ATEXT}](?:[{_ATEXT}.]{{0,63}})(?<!\.)" r'|"[^"\\\n]{1,62}"'
_LABEL = rf"[^\W_](?:[\w{_MARKS}-]{{0,61}}(?:[^\W_]|[{_MARKS}]))?"
_TLD = rf"(?:[^\W\d_]|[{_MARKS}]){{2,63}}|xn--[a-z0-9-]{{1,59}}"
_DOMAIN = (
    rf"(?:{_LABEL}\.){{1,10}}(?:{_TLD})(?![\w{_MARKS}-])"
    r"|\[(?:IPv6:[0-9A-Fa-f:.]{2,45}|\d{1,3}(?:\.\d{1,3}){3})\]"
)
_EMAIL = re.compile(rf"(?:{_LOCAL})@(?:{_DOMAIN})")


def find_emails(text: str) -> list[Span]:
    """Addresses ``local@domain.tld`` (RFC 5322 and 6531) or ``local@[address literal]``."""
    if "@" not in text:
        return []
    return spans(_EMAIL, text, "email", always)


# --- payment card ------------------------------------------------------------

# A group just after an IBAN's ``CC00`` belongs to the IBAN.
_CARD = re.compile(
    r"(?=\d)(?<![\w-])(?<![A-Z]{2}\d\d[ -])(?:"
    r"\d{4}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?"  # 4-4-4-4(-3)
    r"|\d{4}([ -])\d{6}\2\d{4,5}"  # 4-6-5 (Amex), 4-6-4 (Diners)
    r"|\d{4}([ -])\d{4}\3\d{5}"  # 4-4-5 (13-digit Visa)
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
    (re.compile(r"62|81"), range(16, 20)),  # UnionPay
    (re.compile(r"5[06-8]|6[37]"), range(13, 20)),  # Maestro
    (re.compile(r"220[0-4]"), range(16, 17)),  # Mir
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
    return spans(_CARD, text, "card", _card_ok)


# --- JSON web tokens ---------------------------------------------------------

# A JWS (three parts, the last possibly empty for ``alg: none``) or a JWE (five);
# the header is base64url JSON, so it starts ``ey`` (``{"``) or ``ew`` (``{`` and
# a line break or a space). Parts are separated by dots, outside their class, so
# the match never backtracks within a part.
_JWT = re.compile(
    r"(?=e)(?<![\w.-])e[wy][A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"
    r"(?:\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+)?(?![\w-])"
)


def _jwt_ok(candidate: str) -> bool:
    header = candidate.split(".", 1)[0]
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return False
    return isinstance(decoded, dict) and "alg" in decoded


def find_jwts(text: str) -> list[Span]:
    """JSON web tokens (JWS and JWE) whose header decodes to JSON with ``alg``."""
    return spans(_JWT, text, "jwt", _jwt_ok)


# --- high-entropy tokens -----------------------------------------------------

_TOKEN = re.compile(
    r"(?=[A-Za-z0-9_+/-])(?<![A-Za-z0-9_+/-])[A-Za-z0-9_+/-]{24,}={0,2}(?![A-Za-z0-9_+/=-])"
)
# A long unbroken run, or a shorter one that mixes cases (``ERUeBKaAEU-G76rx…``).
_RUN = re.compile(r"[A-Za-z0-9+=]{16,}|(?=[A-Z0-9+=]*[a-z])(?=[a-z0-9+=]*[A-Z])[A-Za-z0-9+=]{10,}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}|[0-9a-f]{128}")
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
    return spans(_TOKEN, text, "token", _token_ok)


# --- all of them -------------------------------------------------------------

DETECTORS: Final[dict[str, Detector]] = {
    "secret": find_secrets,
    "jwt": find_jwts,
    "password": find_passwords,
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


def _merge(kept: list[Span], found: list[Span]) -> list[Span]:
    """``kept`` (sorted, disjoint) with the spans of ``found`` that overlap nothing kept before."""
    out: list[Span] = []
    i = 0
    for span in sorted(found):
        while i < len(kept) and kept[i].end <= span.start:
            out.append(kept[i])
            i += 1
        if (i < len(kept) and kept[i].start < span.end) or (out and out[-1].end > span.start):
            continue
        out.append(span)
    out.extend(kept[i:])
    return out


def detect(text: str, detectors: Iterable[Detector] = DETECTORS.values()) -> list[Span]:
    """Non-overlapping spans of every sensitive value in ``text``, in order."""
    kept: list[Span] = []
    for detector in detectors:
        found = detector(text)
        if found:
            kept = _merge(kept, found)
    return kept
