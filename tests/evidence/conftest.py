"""A store with governed runs, eval reports beside it, and evidence exported from it."""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from proctor import Runtime
from proctor.audit import SigningKey
from proctor.evidence.export import export_evidence
from proctor.evidence.format import signed_bytes
from tests.audit.conftest import governed_run
from tests.cli.conftest import cli  # noqa: F401  (fixture)
from tests.evals.test_gate import make_report
from tests.shop import Env

SINCE = datetime(2025, 12, 31, tzinfo=UTC)
UNTIL = datetime(2026, 1, 2, tzinfo=UTC)


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_zip(path: Path, files: Mapping[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def manifest_of(files: Mapping[str, bytes]) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads(files["manifest.json"])
    return manifest


def resigned(files: dict[str, bytes], key: SigningKey) -> dict[str, bytes]:
    """What a forger with a key of their own does: re-hash every file, re-sign the manifest."""
    manifest = manifest_of(files)
    manifest["files"] = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in files.items()
        if name != "manifest.json"
    }
    manifest["signature"] = {
        "algorithm": "ed25519",
        "key_id": key.key_id,
        "public_key": key.verify_key.pem(),
        "value": key.sign(signed_bytes(manifest)),
    }
    return {**files, "manifest.json": json.dumps(manifest).encode()}


@dataclass
class Exported:
    env: Env
    rt: Runtime
    run_id: str
    path: Path

    def files(self) -> dict[str, bytes]:
        return read_zip(self.path)

    def manifest(self) -> dict[str, Any]:
        return manifest_of(self.files())

    def export(self, name: str = "again.zip", **options: Any) -> Path:
        out = self.env.tmp / name
        options.setdefault("since", SINCE)
        options.setdefault("until", UNTIL)
        export_evidence(self.rt, out, **options)
        return out

    def tampered(self, change: Callable[[dict[str, bytes]], dict[str, bytes]]) -> Path:
        return write_zip(self.env.tmp / "tampered.zip", change(self.files()))


def write_reports(home: Path) -> None:
    """One eval report inside the range and one long before it."""
    folder = home / "reports"
    (folder / "latest").mkdir(parents=True)
    inside = make_report(failed=1, manifest={"created_at": "2026-01-01T06:00:00+00:00"})
    before = make_report(manifest={"created_at": "2025-06-01T06:00:00+00:00"})
    (folder / "latest" / "report.json").write_text(inside.model_dump_json())
    (folder / "old.json").write_text(before.model_dump_json())
    (folder / "notes.json").write_text('{"not": "a report"}')


@pytest.fixture
async def exported(env: Env) -> Exported:
    rt = env.runtime()
    run_id = await governed_run(env, rt)
    write_reports(env.tmp / "home")
    done = Exported(env, rt, run_id, env.tmp / "evidence.zip")
    done.export("evidence.zip")
    return done
