"""Every shell and Python snippet in the docs runs, page by page, from a fresh folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .snippets import ROOT, Snippet, pages, snippets

SESSION = Path(__file__).with_name("session.py")


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "OTEL_"))}
    env.update(
        PROCTOR_HOME=str(tmp / ".proctor"),
        COLUMNS="100",
        NO_COLOR="1",
        # the snippets' own files (shop.py...) import from where they are written
        PYTHONPATH=os.pathsep.join([str(tmp), env.get("PYTHONPATH", "")]),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]),
    )
    return env


def _tutorial_folder(tmp: Path) -> None:
    """Where every page's snippets start: the repository's ``examples/``, and the files
    of index.md's first governed run (``shop.py``, ``policies/support/``...), which the
    other pages build on."""
    shutil.copytree(ROOT / "examples", tmp / "examples")
    for s in snippets(ROOT / "docs" / "index.md"):
        if s.file is not None:
            target = tmp / s.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(s.code, encoding="utf-8")


def _run_page(found: list[Snippet], tmp: Path) -> None:
    _tutorial_folder(tmp)
    env = _env(tmp)
    python: list[str] = []
    for n, s in enumerate(found):
        if s.skipped is not None:
            continue
        if s.file is not None:
            target = tmp / s.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(s.code, encoding="utf-8")
        elif s.language == "python":
            path = tmp / f".snippet-{n}.py"
            path.write_text(s.code, encoding="utf-8")
            python.append(f"{s.where}={path}")
        else:
            _flush(python, tmp, env)
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", s.code],
                cwd=tmp,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, f"{s.where} failed:\n{done.stdout}\n{done.stderr}"
    _flush(python, tmp, env)


def _flush(python: list[str], tmp: Path, env: dict[str, str]) -> None:
    """Run the Python snippets so far, in one session, then start a new list."""
    if not python:
        return
    done = subprocess.run(
        [sys.executable, str(SESSION), *python],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{python[-1].split('=')[0]}:\n{done.stdout}\n{done.stderr}"
    python.clear()


def _pages_with_snippets() -> list[Path]:
    return [p for p in pages() if any(s.skipped is None for s in snippets(p))]


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("page", _pages_with_snippets(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_snippets_of_a_page_run(page: Path, tmp_path: Path) -> None:
    _run_page(snippets(page), tmp_path)


def test_a_snippet_not_run_says_why() -> None:
    skipped = [s for p in pages() for s in snippets(p) if s.skipped is not None]
    for s in skipped:
        assert len(s.skipped or "") >= 10, f"{s.where}: say why it is not run"
