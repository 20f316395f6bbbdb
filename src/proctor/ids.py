"""Identifiers: a readable prefix, then time-ordered random hex; and the one form in which
names of people and agents are compared."""

from __future__ import annotations

import secrets
import time
import unicodedata


def new_id(prefix: str) -> str:
    """``<prefix>_<48-bit ms timestamp><80 random bits>``: sortable by creation time."""
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"


def idempotency_key(run_id: str, step: int) -> str:
    """The key a tool receives for one step of one run; the same on every retry or resume."""
    return f"{run_id}/{step}"


def identity_key(name: str) -> str:
    """The form in which two names of people or agents are compared.

    ``Customer``, ``customer `` and a full-width customer are one identity:
    Unicode compatibility form (NFKC), case folded (``Straße`` is ``STRASSE``), without
    invisible format characters (zero-width spaces and joiners) or the whitespace around
    it. Names are stored as given; only comparisons use this form.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    visible = "".join(c for c in folded if unicodedata.category(c) != "Cf")
    return visible.strip()


def same_identity(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name the same person or agent; an empty name names nobody."""
    key = identity_key(a)
    return bool(key) and key == identity_key(b)


MAX_NAME_LENGTH = 128
"""The longest tenant, workflow, agent, requester or token name the store holds."""


def name_problem(value: str, what: str) -> str | None:
    """Why ``value`` cannot be a ``what`` (a tenant, a token name...), or None when it can:
    it must have a visible character, at most ``MAX_NAME_LENGTH`` characters, no control
    characters and no whitespace around it."""
    if not identity_key(value):
        return f"a {what} cannot be empty"
    if len(value) > MAX_NAME_LENGTH:
        return f"a {what} has at most {MAX_NAME_LENGTH} characters, not {len(value)}"
    if value != value.strip():
        return f"a {what} cannot start or end with whitespace ({value.strip()!r}?)"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return f"a {what} cannot hold control characters"
    return None
