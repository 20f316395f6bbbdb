"""The redactors a runtime applies at every boundary, per tenant and per tool.

Everything proctor stores or sends goes through here first: audit payloads (before
they are hashed, so the chain commits to the redacted copy), the step journal, run
details, logs, spans, API answers and exports. One place, so no path is skipped.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import orjson

from proctor.errors import PayloadTooLarge
from proctor.redaction.redactor import Redactor
from proctor.redaction.settings import RedactionSettings


class Redaction:
    """Per-tenant redactors built from the bundle's settings, cached."""

    def __init__(self, settings: RedactionSettings, secret: bytes) -> None:
        self.settings = settings
        # The hash-mode key: derived, so the audit key itself never keys a public digest.
        self._key = hmac.new(secret, b"proctor redaction v1", hashlib.sha256).digest()
        self._cache: dict[tuple[str, frozenset[str]], Redactor] = {}

    def redactor(self, tenant: str, fields: frozenset[str] = frozenset()) -> Redactor:
        """The tenant's redactor, with ``fields`` (a tool's sensitive fields) declared too."""
        found = self._cache.get((tenant, fields))
        if found is None:
            rule = self.settings.rule(tenant)
            found = Redactor(
                mode_by_kind={str(k): m for k, m in rule.kinds.items()},
                key=self._key,
                fields=frozenset(rule.fields) | fields,
                default_mode=rule.mode or "mask",
            )
            self._cache[(tenant, fields)] = found
        return found

    def limit(self, tenant: str) -> int:
        """The largest tool argument set or result ``tenant`` may send, in bytes."""
        return self.settings.rule(tenant).payload_limit

    def check_size(self, tenant: str, value: Any, what: str) -> int:
        """The size of ``value`` in bytes (UTF-8, JSON for anything but a string); raises
        :class:`~proctor.errors.PayloadTooLarge` when it is over the tenant's limit.

        Call it on a tool's arguments before they are validated, and on its result
        before it is recorded: ``what`` names the payload in the error
        (``"arguments of refund"``, ``"result of refund"``).
        """
        limit = self.limit(tenant)
        size = payload_size(value)
        if size > limit:
            own = self.settings.tenants.get(tenant)
            scope = (
                "default" if own is None or own.max_payload_bytes is None else f"tenants.{tenant}"
            )
            raise PayloadTooLarge(what, size, limit, f"redaction.{scope}.max_payload_bytes")
        return size

    def text(self, tenant: str, text: str) -> str:
        return self.redactor(tenant).text(text)

    def value(self, tenant: str, value: Any, fields: frozenset[str] = frozenset()) -> Any:
        return self.redactor(tenant, fields).value(value)


def payload_size(value: Any) -> int:
    """Bytes of ``value``: UTF-8 for a string, else its JSON (other values as their ``str``)."""
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
    if isinstance(value, bytes | bytearray):
        return len(value)
    try:
        return len(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
    except orjson.JSONEncodeError:  # what orjson refuses (integers beyond 64 bits)
        return len(json.dumps(value, default=str).encode("utf-8", "surrogatepass"))
