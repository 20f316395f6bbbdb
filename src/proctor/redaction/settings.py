"""Redaction settings: the ``redaction`` section of a bundle's ``proctor.yaml``.

::

    redaction:
      default:
        mode: mask              # mask | hash | drop | keep, for every kind not listed
        kinds: {email: hash}    # per kind: email phone card iban ssn secret jwt token field
        fields: [note]          # more argument/result keys whose whole value is sensitive
      tenants:
        acme: {mode: hash}      # over the default: mode replaced, kinds and fields added

``hash`` keeps equal values linkable (a keyed HMAC, the key derived from the audit
key); ``drop`` removes them; ``keep`` turns a detector off. Declared fields
(``sensitive=`` on a tool, and ``fields`` here) are the kind ``field``.
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from proctor.redaction.detectors import KINDS
from proctor.redaction.redactor import FIELD, Mode

Kind = Literal["email", "phone", "card", "iban", "ssn", "secret", "jwt", "token", "field"]
assert set(get_args(Kind)) == {*KINDS, FIELD}


class RedactionRule(BaseModel):
    """How one tenant's (or the default) sensitive values are redacted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode | None = None
    """The mode of every kind not in ``kinds``; unset means the default's (``mask``)."""
    kinds: dict[Kind, Mode] = Field(default_factory=dict)
    """A mode per kind, over ``mode``."""
    fields: tuple[str, ...] = ()
    """Mapping keys whose whole value is sensitive, in every tool's arguments and results."""

    def over(self, base: RedactionRule) -> RedactionRule:
        """This rule applied over ``base``."""
        return RedactionRule(
            mode=self.mode or base.mode,
            kinds={**base.kinds, **self.kinds},
            fields=tuple(dict.fromkeys((*base.fields, *self.fields))),
        )


class RedactionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    default: RedactionRule = Field(default_factory=RedactionRule)
    tenants: dict[str, RedactionRule] = Field(default_factory=dict)

    def rule(self, tenant: str) -> RedactionRule:
        """The rule in force for ``tenant``: its own over the default."""
        own = self.tenants.get(tenant)
        return self.default if own is None else own.over(self.default)
