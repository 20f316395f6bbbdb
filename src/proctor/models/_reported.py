"""Counts a provider reported, read the same whatever shape its SDK version gives them.

A field an SDK version does not know yet arrives as a plain dict (or not at all)
instead of a typed object; a count that is missing, null or negative reads as 0.
"""

from __future__ import annotations

from collections.abc import Mapping


def part(holder: object, name: str) -> object:
    """``holder.name`` or ``holder[name]``; None when there is no such part."""
    if holder is None:
        return None
    if isinstance(holder, Mapping):
        return holder.get(name)
    return getattr(holder, name, None)


def count(holder: object, name: str) -> int:
    """The token count ``name`` in ``holder``; 0 when it is missing or not a count."""
    value = part(holder, name)
    if isinstance(value, bool) or not isinstance(value, int):
        return 0
    return max(value, 0)
