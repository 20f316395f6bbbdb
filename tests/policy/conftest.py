from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from proctor.policy import PolicyBundle

from .helpers import SUPPORT, WriteBundle


@pytest.fixture(scope="session")
def support() -> PolicyBundle:
    return PolicyBundle.load(SUPPORT)


@pytest.fixture
def write_bundle(tmp_path: Path) -> WriteBundle:
    """Write a bundle folder: ``write_bundle({"a.cedar": "..."}, label="x")``."""

    def write(files: Mapping[str, str], *, label: str | None = "test", name: str = "b") -> Path:
        root = tmp_path / name
        root.mkdir()
        if label is not None:
            (root / "proctor.yaml").write_text(f"label: {label}\n")
        for relative, text in files.items():
            path = root / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        return root

    return write
