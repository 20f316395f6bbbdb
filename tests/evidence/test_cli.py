"""``proctor evidence export`` and ``verify`` as an auditor runs them."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from tests.cli.conftest import Cli
from tests.retention.test_cli import finished_run


def test_export_then_verify_offline_then_catch_a_tampered_copy(cli: Cli, tmp_path: Path) -> None:
    finished_run(days_ago=3)
    exported = cli("evidence", "export", "--since", "2020-01-01", "--out", "ev.zip")
    assert exported.exit_code == 0, exported.output
    assert "Wrote ev.zip: 4 audit entries of 1 tenant(s), 1 run(s)" in exported.output

    embedded = cli("evidence", "verify", "ev.zip")
    assert embedded.exit_code == 0, embedded.output
    assert "OK: ev.zip" in embedded.output
    # Both count the same files: those the signed manifest lists.
    (written,) = re.findall(r"(\d+) files and the manifest that signs them", exported.output)
    (matched,) = re.findall(r"(\d+) files match the signed manifest", embedded.output)
    with zipfile.ZipFile(tmp_path / "ev.zip") as archive:
        assert int(written) == int(matched) == len(archive.namelist()) - 1
    assert "Verified only against the key embedded in the bundle" in embedded.output

    key = tmp_path / "audit.pem"
    key.write_text(cli("audit", "public-key").output)
    given = cli("evidence", "verify", "ev.zip", "--public-key", str(key))
    assert given.exit_code == 0, given.output
    assert "Signed by the given key" in given.output

    with (
        zipfile.ZipFile(tmp_path / "ev.zip") as src,
        zipfile.ZipFile(tmp_path / "bad.zip", "w") as dst,
    ):
        for name in src.namelist():
            data = src.read(name)
            dst.writestr(
                name, data.replace(b"completed", b"cancelled") if name == "runs.jsonl" else data
            )
    failed = cli("evidence", "verify", "bad.zip", "--public-key", str(key))
    assert failed.exit_code == 1
    assert "FAILED: bad.zip" in failed.output
    assert "runs.jsonl: modified" in failed.output


def test_a_bad_date_says_what_a_date_looks_like(cli: Cli) -> None:
    result = cli("evidence", "export", "--since", "yesterday", "--out", "ev.zip")
    assert result.exit_code == 2
    assert "--since must be a date like 2026-11-01" in result.output
