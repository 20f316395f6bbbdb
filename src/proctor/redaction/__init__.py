"""Redaction of sensitive values before anything is stored.

:func:`redact_fields` masks the fields a tool declares sensitive. A
:class:`Redactor` also finds sensitive values in free text (emails, phone
numbers, payment cards, IBANs, US SSNs, keys, credentials and tokens), in time
linear in the text, and masks, hashes or drops them, per kind. A
:class:`~proctor.redaction.policy.Redaction` holds a runtime's redactors per
tenant and the size limit of tool arguments and results.
"""

from __future__ import annotations

from proctor.redaction.detectors import KINDS, Span, detect
from proctor.redaction.fields import MASK, redact_fields
from proctor.redaction.redactor import FIELD, Mode, Redactor

__all__ = ["FIELD", "KINDS", "MASK", "Mode", "Redactor", "Span", "detect", "redact_fields"]
