"""The core names no example: only the app an example declares plugs it in."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).parents[2] / "src" / "proctor"


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, those under ``TYPE_CHECKING`` included."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_no_core_module_imports_an_example() -> None:
    offenders = {
        str(path.relative_to(SRC)): sorted(m for m in imported(path) if "examples" in m)
        for path in SRC.rglob("*.py")
        if "examples" not in path.relative_to(SRC).parts
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_app_imports_nothing_above_it() -> None:
    above = ("proctor.evals", "proctor.agent", "proctor.cli", "proctor.server")
    assert [m for m in imported(SRC / "app.py") if m.startswith(above)] == []
    assert not (SRC / "demo").exists()
    assert not (SRC / "models" / "_support_intents.py").exists()
