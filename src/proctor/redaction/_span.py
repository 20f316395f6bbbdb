"""A span of sensitive text, and the loop every pattern-based detector shares."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple


class Span(NamedTuple):
    """A sensitive value at ``text[start:end]``."""

    start: int
    end: int
    kind: str


Detector = Callable[[str], list[Span]]


def spans(
    pattern: re.Pattern[str], text: str, kind: str, keep: Callable[[str], bool]
) -> list[Span]:
    """Matches that pass ``keep``; after a rejected match the search resumes just past its start.

    Every pattern given here starts only where a look-behind of its own class allows,
    or has bounded quantifiers, so resuming inside a rejected match costs a bounded
    amount of work per character.
    """
    found: list[Span] = []
    m = pattern.search(text)
    while m is not None:
        if keep(m.group()):
            found.append(Span(m.start(), m.end(), kind))
            m = pattern.search(text, m.end())
        else:
            m = pattern.search(text, m.start() + 1)
    return found


def always(_: str) -> bool:
    return True
