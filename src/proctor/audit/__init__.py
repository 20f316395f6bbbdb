"""The audit log: hash-chained entries, signed checkpoints, verification."""

from proctor.audit.chain import GENESIS, AuditLog, Envelope
from proctor.audit.events import AuditEvent, EntryKind
from proctor.audit.keys import SigningKey, VerifyKey
from proctor.audit.verify import Problem, Tamper, VerifyReport, verify_chain, verify_store

__all__ = [
    "GENESIS",
    "AuditEvent",
    "AuditLog",
    "EntryKind",
    "Envelope",
    "Problem",
    "SigningKey",
    "Tamper",
    "VerifyKey",
    "VerifyReport",
    "verify_chain",
    "verify_store",
]
