"""The redactors a runtime applies at every boundary, per tenant and per tool.

Everything proctor stores or sends goes through here first: audit payloads (before
they are hashed, so the chain commits to the redacted copy), the step journal, run
details, logs, spans, API answers and exports. One place, so no path is skipped.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

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

    def text(self, tenant: str, text: str) -> str:
        return self.redactor(tenant).text(text)

    def value(self, tenant: str, value: Any, fields: frozenset[str] = frozenset()) -> Any:
        return self.redactor(tenant, fields).value(value)
