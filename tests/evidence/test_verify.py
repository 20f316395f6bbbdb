"""Verifying an evidence bundle offline, and each way of tampering with one."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from proctor.audit import SigningKey
from proctor.evidence.verify import Failure, verify_evidence
from tests.audit.conftest import LAST, TENANT

from .conftest import Exported, manifest_of, resigned, write_zip

DENIED = 6


def forger() -> SigningKey:
    return SigningKey(Ed25519PrivateKey.generate())


def kinds(failures: list[Failure]) -> set[tuple[str, str]]:
    return {(f.file, f.kind) for f in failures}


async def test_an_untouched_bundle_verifies_with_the_deployment_key(exported: Exported) -> None:
    report = verify_evidence(exported.path, exported.rt.key.verify_key)
    assert report.failures == []
    assert report.key_given
    assert report.key_id == exported.rt.key.key_id
    assert (report.entries, report.tenants, report.checkpoints) == (LAST, 1, 1)
    assert (report.bundles, report.reports, report.purged) == (1, 1, 0)


async def test_without_a_key_it_verifies_against_the_embedded_one_and_says_so(
    exported: Exported,
) -> None:
    report = verify_evidence(exported.path)
    assert report.ok
    assert not report.key_given
    assert report.key_id == exported.rt.key.key_id


def _bundle_file(files: dict[str, bytes]) -> str:
    return next(n for n in files if n.endswith("files/policy.cedar"))


def _change_bytes(files: dict[str, bytes]) -> dict[str, bytes]:
    return {**files, "runs.jsonl": files["runs.jsonl"].replace(b"completed", b"cancelled")}


def _remove(files: dict[str, bytes]) -> dict[str, bytes]:
    return {n: d for n, d in files.items() if n != "approvals.jsonl"}


def _add(files: dict[str, bytes]) -> dict[str, bytes]:
    return {**files, "extra/notes.txt": b"nothing to see"}


def _edit_manifest(files: dict[str, bytes]) -> dict[str, bytes]:
    manifest = manifest_of(files)
    manifest["range"]["since"] = "2025-01-01T00:00:00.000000+00:00"
    return {**files, "manifest.json": json.dumps(manifest).encode()}


def _edit_signature(files: dict[str, bytes]) -> dict[str, bytes]:
    manifest = manifest_of(files)
    value = manifest["signature"]["value"]
    manifest["signature"]["value"] = ("0" if value[0] != "0" else "1") + value[1:]
    return {**files, "manifest.json": json.dumps(manifest).encode()}


def _edit_bundle_file(files: dict[str, bytes]) -> dict[str, bytes]:
    name = _bundle_file(files)
    return {**files, name: files[name] + b"\npermit(principal, action, resource);\n"}


@pytest.mark.parametrize(
    ("change", "file", "kind"),
    [
        (_change_bytes, "runs.jsonl", "modified"),
        (_remove, "approvals.jsonl", "missing"),
        (_add, "extra/notes.txt", "added"),
        (_edit_manifest, "manifest.json", "bad signature"),
        (_edit_signature, "manifest.json", "bad signature"),
        (_edit_bundle_file, "policy.cedar", "modified"),
    ],
    ids=["file bytes", "file removed", "file added", "manifest", "signature", "bundle file"],
)
async def test_each_kind_of_tampering_is_named(
    exported: Exported,
    change: Callable[[dict[str, bytes]], dict[str, bytes]],
    file: str,
    kind: str,
) -> None:
    report = verify_evidence(exported.tampered(change), exported.rt.key.verify_key)
    assert not report.ok
    assert any(f.file.endswith(file) and f.kind == kind for f in report.failures), report.failures


async def test_a_wrong_public_key_fails_the_signature(exported: Exported) -> None:
    other = forger().verify_key
    report = verify_evidence(exported.path, other)
    failure = next(f for f in report.failures if f.file == "manifest.json")
    assert failure.kind == "bad signature"
    assert f"not by the given key {other.key_id}" in failure.detail


async def test_a_forger_who_re_signs_is_caught_by_the_deployment_key(exported: Exported) -> None:
    forged = exported.tampered(lambda files: resigned(_change_bytes(files), forger()))
    # Against the forger's embedded key the files and manifest agree...
    embedded = verify_evidence(forged)
    assert ("runs.jsonl", "modified") not in kinds(embedded.failures)
    # ...but the audit checkpoints were signed by the deployment, not by the forger.
    assert ("audit.jsonl", "bad signature") in kinds(embedded.failures)
    assert ("manifest.json", "bad signature") in kinds(
        verify_evidence(forged, exported.rt.key.verify_key).failures
    )


def _audit_lines(files: dict[str, bytes]) -> list[dict[str, object]]:
    return [json.loads(line) for line in files["audit.jsonl"].splitlines()]


def _with_lines(files: dict[str, bytes], lines: list[dict[str, object]]) -> dict[str, bytes]:
    text = "".join(json.dumps(line) + "\n" for line in lines)
    return {**files, "audit.jsonl": text.encode()}


async def test_an_altered_audit_line_is_named_by_entry_even_after_re_hashing(
    exported: Exported,
) -> None:
    def change(files: dict[str, bytes]) -> dict[str, bytes]:
        lines = _audit_lines(files)
        payload = str(lines[DENIED - 1]["payload"])
        lines[DENIED - 1]["payload"] = payload.replace('"5000.00"', '"50.00"')
        # A forger without the audit key re-hashes the files and re-signs the manifest.
        return resigned(_with_lines(files, lines), forger())

    report = verify_evidence(exported.tampered(change))
    entry = next(f for f in report.failures if f.file == "audit.jsonl" and f.kind == "modified")
    assert entry.entry is not None
    assert entry.entry.startswith(f"tenant {TENANT}, entry {DENIED} (aud_")
    assert entry.detail == "its payload was changed"


async def test_a_removed_audit_line_is_deleted(exported: Exported) -> None:
    def change(files: dict[str, bytes]) -> dict[str, bytes]:
        lines = _audit_lines(files)
        del lines[DENIED - 1]
        return _with_lines(files, lines)

    report = verify_evidence(exported.tampered(change), exported.rt.key.verify_key)
    assert ("audit.jsonl", "modified") in kinds(report.failures)  # the file's hash
    chain = [f for f in report.failures if f.file == "audit.jsonl" and f.entry]
    assert (chain[0].entry or "").startswith(f"tenant {TENANT}, entry {DENIED + 1}")
    assert chain[0].kind == "deleted"


async def test_the_last_audit_lines_cut_off_are_deleted(exported: Exported) -> None:
    def change(files: dict[str, bytes]) -> dict[str, bytes]:
        return resigned(_with_lines(files, _audit_lines(files)[:-3]), forger())

    report = verify_evidence(exported.tampered(change))
    assert ("audit.jsonl", "deleted") in kinds(report.failures)


async def test_a_bundle_file_that_no_longer_matches_its_version_is_named(
    exported: Exported,
) -> None:
    forged = exported.tampered(lambda files: resigned(_edit_bundle_file(files), forger()))
    report = verify_evidence(forged)
    (failure,) = [f for f in report.failures if f.kind == "bundle hash"]
    assert failure.entry == f"bundle {exported.rt.policy.version}"
    assert "not to the version they claim" in failure.detail


async def test_a_file_that_is_not_a_zip_fails_clearly(exported: Exported) -> None:
    bogus = exported.env.tmp / "bogus.zip"
    bogus.write_bytes(b"not a zip")
    (failure,) = verify_evidence(bogus).failures
    assert failure.kind == "unreadable"


async def test_a_zip_without_a_manifest_fails(exported: Exported) -> None:
    files = exported.files()
    del files["manifest.json"]
    (failure,) = verify_evidence(write_zip(exported.env.tmp / "bare.zip", files)).failures
    assert (failure.file, failure.kind) == ("manifest.json", "missing")
