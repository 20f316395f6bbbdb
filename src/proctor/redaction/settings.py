"""Redaction settings: the ``redaction`` section of a bundle's ``proctor.yaml``.

::

    redaction:
      default:
        mode: mask              # mask | hash | drop | keep, for every kind not listed
        kinds: {email: hash}    # email phone card iban ssn secret password jwt token field
        fields: [note]          # more argument/result keys whose whole value is sensitive
        max_payload_bytes: 1048576  # largest tool argument or result accepted (UTF-8 JSON)
      tenants:
        acme: {mode: hash}      # over the default: mode replaced, kinds and fields added

``hash`` keeps equal values linkable (a keyed HMAC, the key derived from the audit
key); ``drop`` removes them; ``keep`` turns a detector off. Declared fields
(``sensitive=`` on a tool, and ``fields`` here) are the kind ``field``.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from proctor.redaction.detectors import KINDS
from proctor.redaction.redactor import FIELD, Mode

Kind = Literal[
    "email", "phone", "card", "iban", "ssn", "secret", "password", "jwt", "token", "field"
]
assert set(get_args(Kind)) == {*KINDS, FIELD}

DEFAULT_MAX_PAYLOAD_BYTES: Final = 1 << 20
"""1 MiB: the detectors read it in well under a second, whatever its shape."""


class RedactionRule(BaseModel):
    """How one tenant's (or the default) sensitive values are redacted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode | None = None
    """The mode of every kind not in ``kinds``; unset means the default's (``mask``)."""
    kinds: dict[Kind, Mode] = Field(default_factory=dict)
    """A mode per kind, over ``mode``."""
    fields: tuple[str, ...] = ()
    """Mapping keys whose whole value is sensitive, in every tool's arguments and results."""
    max_payload_bytes: int | None = Field(default=None, gt=0)
    """The largest tool argument set or result accepted, in bytes of UTF-8 JSON; unset
    means the default's (:data:`DEFAULT_MAX_PAYLOAD_BYTES`)."""

    def over(self, base: RedactionRule) -> RedactionRule:
        """This rule applied over ``base``."""
        return RedactionRule(
            mode=self.mode or base.mode,
            kinds={**base.kinds, **self.kinds},
            fields=tuple(dict.fromkeys((*base.fields, *self.fields))),
            max_payload_bytes=self.max_payload_bytes or base.max_payload_bytes,
        )

    @property
    def payload_limit(self) -> int:
        """The size limit in force: :attr:`max_payload_bytes` or the default."""
        return self.max_payload_bytes or DEFAULT_MAX_PAYLOAD_BYTES


class RedactionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: RedactionRule = Field(default_factory=RedactionRule)
    tenants: dict[str, RedactionRule] = Field(default_factory=dict)

    def rule(self, tenant: str) -> RedactionRule:
        """The rule in force for ``tenant``: its own over the default."""
        own = self.tenants.get(tenant)
        return self.default if own is None else own.over(self.default)
