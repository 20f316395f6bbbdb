"""The audit log: hash-chained entries, signed checkpoints, verification, the anchor."""

from proctor.audit.anchor import AnchorFile, AnchorRead, AnchorSink, anchor_at
from proctor.audit.chain import AuditLog
from proctor.audit.events import AuditEvent, EntryKind
from proctor.audit.keys import SigningKey, VerifyKey
from proctor.audit.records import GENESIS, Checkpoint, Envelope
from proctor.audit.verify import (
    Problem,
    Tamper,
    VerifyReport,
    refused_signatures,
    verify_chain,
    verify_store,
)

__all__ = [
    "GENESIS",
    "AnchorFile",
    "AnchorRead",
    "AnchorSink",
    "AuditEvent",
    "AuditLog",
    "Checkpoint",
    "EntryKind",
    "Envelope",
    "Problem",
    "SigningKey",
    "Tamper",
    "VerifyKey",
    "VerifyReport",
    "anchor_at",
    "refused_signatures",
    "verify_chain",
    "verify_store",
]
