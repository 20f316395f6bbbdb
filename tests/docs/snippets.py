"""The shell and Python snippets of the docs, found and run as a reader would.

Each page's snippets run in order, in a fresh folder with its own PROCTOR_HOME, which
holds a copy of the repository's ``examples/`` and the files of index.md's first governed
run (the tutorial other pages build on):
``sh`` blocks in bash (``set -e``), ``python`` blocks in one Python session per page
(names carry from one block to the next, and top-level ``await`` works, as in a
notebook). An HTML comment just before a block changes what happens to it:

    <!-- snippet: file shop.py -->       the block is that file's content (not run)
    <!-- snippet: not run: WHY -->        the block is shown only (say why, visibly)

Anything else runs. A snippet that fails names its page and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUN = ("sh", "python")
_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```\s*$", re.DOTALL | re.MULTILINE)
_MARKER = re.compile(r"<!--\s*snippet:\s*(file|not run)\s*:?\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Snippet:
    page: Path
    line: int
    language: str
    code: str
    file: str | None = None
    """Where to write it, instead of running it."""
    skipped: str | None = None
    """Why it is not run."""

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def pages() -> list[Path]:
    """The README and every page under docs/, as found (a new page is in without a word)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def snippets(page: Path) -> list[Snippet]:
    text = page.read_text(encoding="utf-8")
    found = []
    for match in _BLOCK.finditer(text):
        language, code = match.group(1), match.group(2)
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = _MARKER.search(before)
        if language not in RUN and not (marker and marker.group(1) == "file"):
            continue
        line = text.count("\n", 0, match.start()) + 1
        kind, detail = (marker.group(1), marker.group(2)) if marker else (None, "")
        if kind == "not run" and not detail:
            raise ValueError(f"{page}:{line}: say why a snippet is not run")
        found.append(
            Snippet(
                page,
                line,
                language,
                code,
                file=detail if kind == "file" else None,
                skipped=detail if kind == "not run" else None,
            )
        )
    return found
