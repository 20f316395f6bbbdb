"""Secrets: keys with a vendor prefix, private key blocks, and credentials given by name.

The vendor prefixes and the credential keywords follow ``detect-secrets`` (its
plugins and its keyword list), written as patterns that start only at the edge
of a word and never backtrack past a bounded window: its own patterns are meant
for one line of a source file, not megabytes of untrusted text, and its plugins
are configured through process-wide settings.

- ``secret``: a vendor key (OpenAI, Anthropic, Stripe, AWS, GitHub, GitLab,
  Slack, Google, SendGrid, Twilio, Mailchimp, npm, PyPI, Square, Telegram,
  Discord, Artifactory, Hugging Face, Shopify, age) or a private key block
  (PEM or PGP), up to its end marker, or to the end of its base64 body when the
  marker is missing.
- ``password``: the value given to a credential keyword (``password=…``,
  ``"api_key": "…"``, ``Pwd=…;``), the password of a URL or connection string
  (``postgres://user:…@host``) and the credentials of an ``Authorization``
  header (``Basic …``, ``Bearer …``). Only the value is taken: the name stays.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

from proctor.redaction._span import Span

__all__ = ["find_passwords", "find_secrets", "password_key"]

# --- vendor keys -------------------------------------------------------------

_VENDOR = re.compile(
    r"(?=[\w])(?<![\w-])(?:"
    r"sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic
    r"|(?:[sr]k|pk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,}"  # Stripe
    r"|(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,}"  # GitHub
    r"|gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|GR1348941[A-Za-z0-9_-]{20,}"  # GitLab runner
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|hooks\.slack\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}"  # Slack hook
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API key
    r"|SG\.[\w-]{22}\.[\w-]{43}"  # SendGrid
    r"|(?:AC|SK)[0-9a-f]{32}"  # Twilio
    r"|[0-9a-f]{32}-us\d{1,2}"  # Mailchimp
    r"|npm_[A-Za-z0-9]{36}"  # npm
    r"|pypi-AgE[A-Za-z0-9_-]{50,}"  # PyPI
    r"|sq0(?:csp|atp)-[0-9A-Za-z_-]{22,43}"  # Square
    r"|\d{8,10}:AA[0-9A-Za-z_-]{33}"  # Telegram bot
    r"|[MNO][A-Za-z\d_-]{23,25}\.[A-Za-z\d_-]{6}\.[A-Za-z\d_-]{27,38}"  # Discord bot
    r"|AKC[A-Za-z0-9]{10,}"  # Artifactory
    r"|hf_[A-Za-z0-9]{34,}"  # Hugging Face
    r"|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"  # Shopify
    r"|AGE-SECRET-KEY-1[0-9A-Z]{58}"  # age
    r")(?![\w-])"
)

# --- private key blocks ------------------------------------------------------

_PEM_BEGIN = re.compile(r"-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----")
_PEM_END = "-----END "
_PEM_END_LINE = re.compile(r"-----END (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----")
# The body of a block whose end marker is missing: base64, line breaks (also
# escaped, as in JSON) and the ``Key: value`` headers of encrypted PEM and PGP.
_PEM_BODY = re.compile(r"(?:[A-Za-z0-9+/=\s:,.-]|\\[nr])*")
PEM_MAX_CHARS: Final = 65_536
"""Longest private key block taken to its end marker (an RSA-16384 key is ~13 KB)."""


def _private_keys(text: str) -> list[Span]:
    found: list[Span] = []
    at = 0
    next_end = -1  # where the next end marker at or after ``at`` starts (-1: none)
    for m in _PEM_BEGIN.finditer(text):
        if m.start() < at:
            continue
        if next_end < m.end() and next_end != -2:
            # Found once per marker: the search only moves forward, so the whole text is
            # read once however many headers there are.
            next_end = text.find(_PEM_END, m.end())
            next_end = -2 if next_end == -1 else next_end
        end_line = None
        if 0 <= next_end - m.end() <= PEM_MAX_CHARS:
            end_line = _PEM_END_LINE.match(text, next_end)
        if end_line is not None:
            end = end_line.end()
        else:
            body = _PEM_BODY.match(text, m.end(), min(len(text), m.end() + PEM_MAX_CHARS))
            end = body.end() if body else m.end()
            while end > m.end() and text[end - 1] in "\n\r\t ":
                end -= 1
        found.append(Span(m.start(), end, "secret"))
        at = end
    return found


def find_secrets(text: str) -> list[Span]:
    """Keys with a vendor prefix (``sk-``, ``AKIA``, ``ghp_``, ``xoxb-``…), private key blocks."""
    found = [Span(m.start(), m.end(), "secret") for m in _VENDOR.finditer(text)]
    if "-----BEGIN " in text:
        found += _private_keys(text)
    return found


# --- credentials given by name -------------------------------------------------

_KEYWORD = (
    r"pass(?:word|wd|phrase|wort)|pwd|contrase[ñn]a|mot[_ -]de[_ -]passe|secret(?!ar)"
    r"|(?:api|auth|service|account|db|database|priv|private|client|access|secret|shared"
    r"|sharedaccess|master|signing|encryption)[_ -]?key"
    r"|(?:db|database|key|user|admin|root)[_-]?pass"
    r"|(?:access|refresh|auth|api|bearer|session|client)[_-]?token|credentials?"
)
_PASSWORD_KEY = re.compile(rf"(?i:{_KEYWORD})")
# Each pattern opens with a look-ahead for its first character: the engine rejects most
# positions on one character-class test instead of trying every alternative.
_ASSIGNED = re.compile(
    r"(?=[abcdekmprsuABCDEKMPRSU][a-zA-Z])"
    rf"(?i:(?:{_KEYWORD})[\w.-]{{0,24}})[\"']?"
    r"(?:\s{0,3}(?::=|=>|=)\s{0,3}|(?P<colon>\s{0,3}:\s{0,3}))"
    r"(?:\"(?P<dq>[^\"\\\n]{1,256})\"|'(?P<sq>[^'\\\n]{1,256})'"
    r"|(?P<bare>[^\s'\",;&<>(){}\[\]]{1,256}))"
)
_URL_PASSWORD = re.compile(
    r"(?<![\w+.-])[A-Za-z][\w+.-]{1,24}://[^\s:/@'\"<>]{0,64}:(?P<pw>[^\s/@'\"<>]{1,128})@"
    r"(?=[\w\[])"
)
_AUTHORIZATION = re.compile(
    r"(?=[bB][aAeE])(?i:\b(?P<scheme>basic|bearer)\s{1,3})(?P<cred>[A-Za-z0-9._~+/-]{8,4096}=*)(?![\w.~+/=-])"
)
# Masks, references to a variable or a template, and words that stand for a value.
_PLACEHOLDER = re.compile(
    r"[*x•.#_$%-]*|\[.*\]|\$\{.*\}|\$\(.*\)|\$[A-Z_][A-Z0-9_]*|%\(?\w+\)?s|%\w+%|<[^>]*>"
    r"|\{\{.*\}\}|\{[\w.]*\}"
    r"|(?i:none|null|nil|true|false|undefined|redacted|required|optional|string|changeme"
    r"|example|hidden|masked|secret|password|n/?a)"
)
_NATURAL_WORD = re.compile(r"[A-Za-z][a-z]*")


def password_key(name: str) -> bool:
    """Whether a mapping key names a credential (``password``, ``api_key``, ``client_secret``…)."""
    return _PASSWORD_KEY.search(name) is not None


def password_value(value: str) -> bool:
    """Whether ``value``, given to a credential's name, is a value rather than a placeholder."""
    return bool(value.strip()) and _PLACEHOLDER.fullmatch(value) is None


def _assigned(text: str) -> list[Span]:
    found: list[Span] = []
    for m in _ASSIGNED.finditer(text):
        group = "dq" if m.group("dq") else "sq" if m.group("sq") else "bare"
        value = m.group(group)
        if not password_value(value):
            continue
        if group == "bare" and m.group("colon") is not None and _NATURAL_WORD.fullmatch(value):
            continue  # ``Password: must be at least 8 characters``: prose, not a value
        found.append(Span(m.start(group), m.end(group), "password"))
    return found


def _authorization(text: str) -> list[Span]:
    found: list[Span] = []
    for m in _AUTHORIZATION.finditer(text):
        cred = m.group("cred")
        if m.group("scheme").lower() == "basic":
            try:
                ok = b":" in base64.b64decode(cred, validate=True)
            except (binascii.Error, ValueError):
                ok = False
        else:
            mixed = any(c.isdigit() for c in cred) or (not cred.islower() and not cred.isupper())
            ok = mixed and not _NATURAL_WORD.fullmatch(cred)
        if ok:
            found.append(Span(m.start("cred"), m.end("cred"), "password"))
    return found


def find_passwords(text: str) -> list[Span]:
    """Values of credential keywords, passwords in URLs, ``Authorization`` credentials."""
    found = _assigned(text)
    if "://" in text:
        found += [
            Span(m.start("pw"), m.end("pw"), "password")
            for m in _URL_PASSWORD.finditer(text)
            if password_value(m.group("pw"))
        ]
    found += _authorization(text)
    return _disjoint(found)


def _disjoint(spans: list[Span]) -> list[Span]:
    out: list[Span] = []
    for span in sorted(spans):
        if not out or span.start >= out[-1].end:
            out.append(span)
    return out
