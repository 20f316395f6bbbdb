"""The anchor: signed chain heads kept outside the database, one JSON line each.

Every checkpoint the signer writes is also appended to the anchor once its
transaction commits. Someone who can write to the database but not to the anchor
can then no longer shorten a chain, or drop its last checkpoints, unseen: the
database must still extend every head the anchor holds. Each line carries the
checkpoint's signature, so someone who can write to the anchor but has no key can
delete lines there, never forge one.

``PROCTOR_AUDIT_ANCHOR`` names the path: a plain file, a file on write-once
storage, or a pipe to a log shipper: anything that takes appended lines.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from proctor.audit.records import Checkpoint
from proctor.errors import ConfigError
from proctor.jsonvalue import canonical_json


class AnchorSink(Protocol):
    """Where signed heads go. One method: append one checkpoint, durably."""

    def append(self, checkpoint: Checkpoint) -> None: ...


@dataclass(frozen=True)
class AnchorRead:
    """What an anchor holds: its signed heads in order, and the lines that are not one."""

    source: str
    heads: list[Checkpoint] = field(default_factory=list)
    malformed: list[int] = field(default_factory=list)
    """Line numbers (from 1) that are not a signed head."""

    def last(self) -> dict[str, Checkpoint]:
        """Each tenant's furthest anchored head."""
        found: dict[str, Checkpoint] = {}
        for head in self.heads:
            if head.tenant not in found or head.seq > found[head.tenant].seq:
                found[head.tenant] = head
        return found


@dataclass(frozen=True)
class AnchorFile:
    """An append-only file of signed heads (created on first append)."""

    path: Path

    def append(self, checkpoint: Checkpoint) -> None:
        line = (canonical_json(checkpoint.to_json()) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One write with O_APPEND: lines from several workers never interleave.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> AnchorRead:
        """Every head in the file; a file not written yet holds none."""
        try:
            text = self.path.read_bytes().decode(errors="replace")
        except FileNotFoundError:
            return AnchorRead(str(self.path))
        except OSError as exc:
            raise ConfigError(f"cannot read the audit anchor {self.path}: {exc.strerror}") from exc
        return parse_anchor(text, str(self.path))


def parse_anchor(text: str, source: str) -> AnchorRead:
    read = AnchorRead(source)
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            read.heads.append(Checkpoint.from_json(data))
        except (ValueError, KeyError, TypeError, AttributeError):
            read.malformed.append(number)
    return read


def anchor_at(path: Path | None) -> AnchorFile | None:
    """The anchor ``PROCTOR_AUDIT_ANCHOR`` names, if any."""
    return None if path is None else AnchorFile(path)
