"""The redactor: detected values and declared fields, masked, hashed or dropped.

A :class:`Redactor` is pure: it returns a redacted copy and never mutates its
input. Each kind of value has a mode:

- ``mask``: ``[redacted:email]`` (a declared field becomes :data:`MASK`, as
  :func:`~proctor.redaction.redact_fields` does, so replay still recognises it);
- ``hash``: ``[email:ab12cd34ef56]``, the first 12 hex digits of an HMAC-SHA256
  keyed with the redactor's key. Equal values give equal tokens, so records stay
  linkable, and without the key nobody can confirm a guess (a phone number has
  too few possibilities for a plain hash to hide it);
- ``drop``: the value goes: an empty string in text, the key removed from a
  mapping for a declared field;
- ``keep``: the value stays, and its detector does not run.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from proctor.redaction._secrets import password_key, password_value
from proctor.redaction._span import Detector, Span
from proctor.redaction.detectors import DETECTORS, detect
from proctor.redaction.fields import MASK

__all__ = ["FIELD", "Mode", "Redactor"]

Mode = Literal["mask", "hash", "drop", "keep"]

FIELD: Final = "field"
"""The kind under which declared sensitive fields are redacted."""

PASSWORD: Final = "password"
"""The kind of a credential's value, also a string under a key that names a credential."""

_DIGEST_CHARS: Final = 12

# Short text without a digit, an @, = or : holds nothing any detector finds: every kind
# needs one of them, except keys and ``Bearer`` credentials, which are 15 characters or
# more (``xoxb-`` and ten).
_PLAIN: Final = re.compile(r"[^0-9@=:]{0,14}")
_CLEAN_MAX_CHARS: Final = 200
_CLEAN_MAX_ENTRIES: Final = 4096


@dataclass(frozen=True)
class Redactor:
    """Redacts text and JSON-like values; see the module docstring for the modes."""

    mode_by_kind: Mapping[str, Mode]
    """The mode of each kind (``email``, ``card``…, and ``field`` for declared fields)."""

    key: bytes | str
    """The HMAC key of ``hash`` mode. Keep it secret and stable to keep tokens linkable."""

    fields: frozenset[str] = frozenset()
    """Mapping keys whose whole value is sensitive, at any depth."""

    default_mode: Mode = "mask"
    """The mode of kinds absent from ``mode_by_kind``."""

    _key: bytes = field(init=False, repr=False)
    _detectors: tuple[Detector, ...] = field(init=False, repr=False)
    _clean: set[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        key = self.key.encode() if isinstance(self.key, str) else bytes(self.key)
        modes = {*self.mode_by_kind.values(), self.default_mode}
        if "hash" in modes and not key:
            raise ValueError("hash mode needs a non-empty key")
        object.__setattr__(self, "_key", key)
        active = tuple(d for kind, d in DETECTORS.items() if self.mode(kind) != "keep")
        object.__setattr__(self, "_detectors", active)
        object.__setattr__(self, "_clean", set())

    def mode(self, kind: str) -> Mode:
        """The mode that applies to ``kind``."""
        return self.mode_by_kind.get(kind, self.default_mode)

    def spans(self, text: str) -> list[Span]:
        """The spans this redactor replaces in ``text``."""
        if _PLAIN.fullmatch(text) or text in self._clean:
            return []
        found = detect(text, self._detectors)
        if not found and len(text) <= _CLEAN_MAX_CHARS:
            # Tool names, policy ids, reasons: the same short strings come back on every
            # call. Remembering the clean ones (never a sensitive one) saves the detectors.
            if len(self._clean) >= _CLEAN_MAX_ENTRIES:
                self._clean.clear()
            self._clean.add(text)
        return found

    def text(self, text: str) -> str:
        """``text`` with every detected value replaced according to its kind's mode."""
        spans = self.spans(text)
        if not spans:
            return text
        parts: list[str] = []
        at = 0
        for start, end, kind in spans:
            parts.append(text[at:start])
            parts.append(self._replacement(kind, text[start:end]))
            at = end
        parts.append(text[at:])
        return "".join(parts)

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like ``value``: declared fields, then strings at any depth, redacted.

        Mapping keys are text too (``{"alice@example.com": 3}``): a key with a sensitive
        value in it is redacted like any string (keys that become equal keep the last
        value). A string under a key that names a credential (``password``, ``api_key``,
        ``client_secret``…) is redacted whole, as kind ``password``.
        """
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            out: dict[Any, Any] = {}
            for k, v in value.items():
                if k in self.fields and v is not None:
                    if self.mode(FIELD) != "drop":
                        out[self._key_text(k)] = self._field(v)
                elif isinstance(v, str) and self._credential(k, v):
                    if self.mode(PASSWORD) != "drop":
                        out[self._key_text(k)] = self._replacement(PASSWORD, v)
                else:
                    out[self._key_text(k)] = self.value(v)
            return out
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def _key_text(self, key: Any) -> Any:
        return self.text(key) if isinstance(key, str) else key

    def _credential(self, key: Any, value: str) -> bool:
        return (
            isinstance(key, str)
            and self.mode(PASSWORD) != "keep"
            and password_key(key)
            and password_value(value)
        )

    def digest(self, kind: str, raw: str) -> str:
        """The keyed digest ``hash`` mode shows for ``raw`` of ``kind``."""
        mac = hmac.new(self._key, f"{kind}\x00{raw}".encode(), hashlib.sha256)
        return mac.hexdigest()[:_DIGEST_CHARS]

    def _replacement(self, kind: str, raw: str) -> str:
        mode = self.mode(kind)
        if mode == "hash":
            return f"[{kind}:{self.digest(kind, raw)}]"
        if mode == "drop":
            return ""
        if mode == "keep":
            return raw
        return f"[redacted:{kind}]"

    def _field(self, value: Any) -> Any:
        mode = self.mode(FIELD)
        if mode == "keep":
            return value
        if mode == "hash":
            raw = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            return f"[{FIELD}:{self.digest(FIELD, raw)}]"
        return MASK
