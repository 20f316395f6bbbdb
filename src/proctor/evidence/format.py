"""The evidence bundle's layout, shared by export and verify.

manifest.json              every other file's SHA-256 and size, the time range,
                           the tenants, each chain's segment, head and signed
                           checkpoints, the bundle versions, proctor's version,
                           and an Ed25519 signature over all of that
audit.jsonl                one audit entry a line: envelope, payload (or purge)
runs.jsonl                 the runs in the range: state, reason, bundle, cost
approvals.jsonl            approval requests in the range, and who decided
bundles/<digest>/files/…   each policy bundle version's files, as loaded
bundles/<digest>/matrix.json    its permission matrix
bundles/<digest>/settings.json  its retention and redaction settings
reports/…                  eval reports whose time falls in the range
index.html                 the same, for a person to read
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from proctor.audit.chain import Envelope
from proctor.audit.verify import Purge
from proctor.errors import ProctorError
from proctor.jsonvalue import canonical_json

FORMAT = "proctor-evidence/1"
MANIFEST = "manifest.json"
AUDIT = "audit.jsonl"
RUNS = "runs.jsonl"
APPROVALS = "approvals.jsonl"
INDEX = "index.html"


class EvidenceError(ProctorError):
    """An evidence bundle that cannot be written or read as asked."""

    exit_code = 2


def signed_bytes(manifest: dict[str, Any]) -> bytes:
    """What the manifest signature covers: the manifest without its signature."""
    return canonical_json({k: v for k, v in manifest.items() if k != "signature"}).encode()


def bundle_dir(digest: str) -> str:
    return f"bundles/{digest[:12]}/"


def entry_line(envelope: Envelope, payload: str | None, purge: Purge | None) -> dict[str, Any]:
    """One audit.jsonl line. ``payload`` is the stored body exactly, so its hash recomputes."""
    return {
        **vars(envelope),
        "payload": payload,
        "purged": None if purge is None else vars(purge),
    }


def parse_entry_line(line: dict[str, Any]) -> tuple[Envelope, str | None, Purge | None]:
    """The envelope, payload and purge record of one audit.jsonl line; ``KeyError``,
    ``TypeError`` or ``ValueError`` when the line is not one."""
    names = Envelope.__dataclass_fields__
    values = {name: line[name] for name in names}
    for name in ("seq",):
        values[name] = int(values[name])
    purged = line.get("purged")
    purge = None if purged is None else Purge(**purged)
    payload = line.get("payload")
    if payload is not None and not isinstance(payload, str):
        raise TypeError("payload must be the stored JSON text")
    return Envelope(**values), payload, purge


def parse_moment(text: str, option: str, *, end_of_day: bool = False) -> datetime:
    """A date (``2026-11-01``) or an ISO date-time; UTC unless it says otherwise.

    A bare date as the end of a range means the end of that day.
    """
    value = text.strip()
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        start = datetime.combine(day, time(), tzinfo=UTC)
        return start + timedelta(days=1) if end_of_day else start
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise EvidenceError(
            f"{option} must be a date like 2026-11-01 (or a date and time like "
            f"2026-11-01T09:30:00Z), not {text!r}"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
