"""A gateway config over a temporary folder: the example's bundle and notes server, and
the faulty server."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mcp"
FAULTY = Path(__file__).parent / "faulty_upstream.py"


class Setup:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.home = folder / "home"
        self.notes = folder / "notes"
        self.notes.mkdir(parents=True)
        shutil.copytree(EXAMPLE / "policy", folder / "policy")
        self.config_data: dict[str, Any] = yaml.safe_load((EXAMPLE / "gateway.yaml").read_text())
        self.config_data["servers"]["notes"]["args"] = [str(EXAMPLE / "upstream.py")]
        self.config_data["idle_timeout_s"] = 600

    def add_faulty(self, *, reconcile: bool = True) -> None:
        self.config_data["servers"]["faulty"] = {
            "command": sys.executable,
            "args": [str(FAULTY)],
            "reconcile": "find_effect" if reconcile else None,
            "tools": {
                "echo": {"effect": "read", "trust": "trusted"},
                "crash": {"effect": "read", "trust": "trusted", "max_retries": 0},
                "stall": {"effect": "read", "trust": "trusted", "timeout_s": 1, "max_retries": 0},
                "slow_write": {"effect": "write", "trust": "trusted", "timeout_s": 60},
            },
        }
        policy = self.folder / "policy" / "faulty.cedar"
        policy.write_text(
            'permit (principal, action in [Action::"echo", Action::"crash", Action::"stall", '
            'Action::"slow_write"], resource);\n'
        )

    @property
    def config(self) -> Path:
        path = self.folder / "gateway.yaml"
        path.write_text(yaml.safe_dump(self.config_data))
        return path

    def env(self, **extra: str) -> dict[str, str]:
        import os

        return {
            **os.environ,
            "PROCTOR_HOME": str(self.home),
            "NOTES_DIR": str(self.notes),
            **extra,
        }

    def counts(self) -> dict[str, int]:
        path = self.notes / "counts.json"
        return json.loads(path.read_text()) if path.exists() else {}


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Setup:
    found = Setup(tmp_path)
    monkeypatch.setenv("PROCTOR_HOME", str(found.home))
    monkeypatch.setenv("NOTES_DIR", str(found.notes))
    return found
