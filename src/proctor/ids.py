"""Identifiers: a readable prefix, then time-ordered random hex."""

from __future__ import annotations

import secrets
import time


def new_id(prefix: str) -> str:
    """``<prefix>_<48-bit ms timestamp><80 random bits>``: sortable by creation time."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def idempotency_key(run_id: str, step: int) -> str:
    """The key a tool receives for one step of one run; the same on every retry or resume."""
    return f"{run_id}/{step}"
