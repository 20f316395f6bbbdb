"""Verifying an evidence bundle offline: no database, only the zip and (ideally) a public key.

Checked, each failure named by file, entry and kind:

- the manifest's signature, with the key given or else the one embedded in it;
- every file against its SHA-256 in the manifest, and no file missing or added;
- the audit log: every payload hash, every chain link, every signed checkpoint and
  its link to the one before, the anchored heads it spans, purged payloads
  accounted for (and due) by the chain's purge records;
- every run and approval line against the chain entries that back it;
- every policy bundle's files against the digest in its version.

The embedded key proves the files were not changed after signing, not who
signed: anyone can sign a forged bundle with a key of their own. Only a key
obtained separately (``proctor audit public-key``) proves where it came from.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from proctor.audit.chain import Envelope
from proctor.audit.keys import VerifyKey
from proctor.audit.records import Checkpoint
from proctor.audit.verify import Purge, check_chain
from proctor.errors import ConfigError
from proctor.evidence import format as fmt
from proctor.evidence.backing import backing_of, check_lines
from proctor.policy.bundle import BundleVersion, bundle_digest


@dataclass(frozen=True)
class Failure:
    file: str
    entry: str | None
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.file}, {self.entry}" if self.entry else self.file
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class EvidenceReport:
    key_id: str = ""
    key_given: bool = False
    """False: the signature was checked only against the key embedded in the manifest."""
    since: str = ""
    until: str = ""
    files: int = 0
    entries: int = 0
    tenants: int = 0
    checkpoints: int = 0
    purged: int = 0
    bundles: int = 0
    missing_bundles: list[str] = field(default_factory=list)
    reports: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def verify_evidence(path: Path, public_key: VerifyKey | None = None) -> EvidenceReport:
    """Check the evidence zip at ``path``; ``public_key`` is the deployment's audit key."""
    report = EvidenceReport(key_given=public_key is not None)
    try:
        with zipfile.ZipFile(path) as archive:
            contents = {
                info.filename: archive.read(info)
                for info in archive.infolist()
                if not info.is_dir()
            }
    except (OSError, zipfile.BadZipFile) as exc:
        report.failures.append(Failure(str(path), None, "unreadable", f"not a readable zip: {exc}"))
        return report
    manifest = _manifest(contents, report)
    if manifest is None:
        return report
    key = _check_signature(manifest, public_key, report)
    _check_files(manifest, contents, report)
    _check_audit(manifest, contents, key, report)
    _check_backing(contents, report)
    _check_bundles(manifest, contents, report)
    report.since = str(manifest.get("range", {}).get("since", ""))
    report.until = str(manifest.get("range", {}).get("until", ""))
    report.reports = len(manifest.get("reports", []))
    return report


def _manifest(contents: dict[str, bytes], report: EvidenceReport) -> dict[str, Any] | None:
    data = contents.get(fmt.MANIFEST)
    if data is None:
        report.failures.append(Failure(fmt.MANIFEST, None, "missing", "the bundle has no manifest"))
        return None
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        report.failures.append(Failure(fmt.MANIFEST, None, "malformed", f"not JSON: {exc}"))
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != fmt.FORMAT:
        report.failures.append(
            Failure(fmt.MANIFEST, None, "malformed", f"not a {fmt.FORMAT} manifest")
        )
        return None
    return manifest


def _check_signature(
    manifest: dict[str, Any], given: VerifyKey | None, report: EvidenceReport
) -> VerifyKey | None:
    """The key that verified the manifest (checkpoints are checked with it), or ``None``."""
    signature = manifest.get("signature")
    if not isinstance(signature, dict):
        report.failures.append(Failure(fmt.MANIFEST, None, "bad signature", "it is not signed"))
        return given
    embedded: VerifyKey | None
    try:
        embedded = VerifyKey.from_pem(str(signature.get("public_key", "")).encode(), "the key")
    except ConfigError:
        embedded = None
    key = given or embedded
    if key is None:
        report.failures.append(
            Failure(fmt.MANIFEST, None, "bad signature", "its embedded public key is unreadable")
        )
        return None
    report.key_id = key.key_id
    if given is not None and signature.get("key_id") != given.key_id:
        report.failures.append(
            Failure(
                fmt.MANIFEST,
                None,
                "bad signature",
                f"signed by key {signature.get('key_id')}, not by the given key {given.key_id}",
            )
        )
        return key
    if not key.verify(str(signature.get("value", "")), fmt.signed_bytes(manifest)):
        report.failures.append(
            Failure(
                fmt.MANIFEST,
                None,
                "bad signature",
                f"the signature does not verify with key {key.key_id}: the manifest was changed",
            )
        )
    return key


def _check_files(
    manifest: dict[str, Any], contents: dict[str, bytes], report: EvidenceReport
) -> None:
    listed: dict[str, Any] = manifest.get("files") or {}
    present = set(contents) - {fmt.MANIFEST}
    report.files = len(present)
    for name in sorted(set(listed) - present):
        report.failures.append(
            Failure(name, None, "missing", "listed in the manifest, not in the zip")
        )
    for name in sorted(present - set(listed)):
        report.failures.append(
            Failure(name, None, "added", "in the zip, not listed in the manifest")
        )
    for name in sorted(present & set(listed)):
        expected = str(listed[name].get("sha256"))
        actual = hashlib.sha256(contents[name]).hexdigest()
        if actual != expected:
            report.failures.append(
                Failure(
                    name,
                    None,
                    "modified",
                    f"SHA-256 {actual[:16]}… differs from the manifest's {expected[:16]}…",
                )
            )


def _check_audit(
    manifest: dict[str, Any],
    contents: dict[str, bytes],
    key: VerifyKey | None,
    report: EvidenceReport,
) -> None:
    chains: dict[str, Any] = manifest.get("chains") or {}
    by_tenant: dict[str, list[tuple[Envelope, str | None, Purge | None]]] = defaultdict(list)
    text = contents.get(fmt.AUDIT, b"").decode(errors="replace")
    for number, raw in enumerate(text.splitlines(), 1):
        try:
            envelope, payload, purge = fmt.parse_entry_line(json.loads(raw))
        except (ValueError, KeyError, TypeError) as exc:
            report.failures.append(
                Failure(fmt.AUDIT, f"line {number}", "malformed", f"not an audit entry: {exc}")
            )
            continue
        by_tenant[envelope.tenant].append((envelope, payload, purge))
    for tenant in sorted(set(by_tenant) - set(chains)):
        report.failures.append(
            Failure(
                fmt.AUDIT,
                f"tenant {tenant}",
                "inserted",
                "entries of a tenant the manifest does not list",
            )
        )
    for tenant, chain in sorted(chains.items()):
        rows = by_tenant.get(tenant, [])
        entries = [e for e, _, _ in rows]
        payloads = {e.entry_id: p for e, p, _ in rows if p is not None}
        purges = {e.entry_id: g for e, p, g in rows if p is None and g is not None}
        checkpoints = [Checkpoint.from_json(c, tenant) for c in chain.get("checkpoints", [])]
        anchored = [Checkpoint.from_json(a, tenant) for a in chain.get("anchored", [])]
        anchor = chain["anchor"]
        result = check_chain(
            tenant,
            entries,
            payloads,
            checkpoints,
            [key] if key is not None else [],
            None,
            purges=purges,
            after=(int(anchor["seq"]), str(anchor["hash"])),
            anchored=anchored,
        )
        for problem in result.problems:
            who = f" ({problem.entry_id})" if problem.entry_id else ""
            report.failures.append(
                Failure(
                    fmt.AUDIT,
                    f"tenant {tenant}, entry {problem.seq}{who}",
                    str(problem.tamper),
                    problem.detail,
                )
            )
        last = entries[-1].seq if entries else int(anchor["seq"])
        if last < int(chain["last_seq"]):
            report.failures.append(
                Failure(
                    fmt.AUDIT,
                    f"tenant {tenant}, entry {last + 1}",
                    "deleted",
                    f"the segment ends at {last}; the manifest says {chain['last_seq']}",
                )
            )
        report.tenants += 1
        report.entries += len(entries)
        report.checkpoints += len(checkpoints)
        report.purged += len(result.purged)


def _check_backing(contents: dict[str, bytes], report: EvidenceReport) -> None:
    """Each run and approval line says what its chain entries say."""
    try:
        audit = _lines(contents, fmt.AUDIT)
        runs, approvals = _lines(contents, fmt.RUNS), _lines(contents, fmt.APPROVALS)
        found = check_lines(runs, approvals, backing_of(audit))
    except (ValueError, KeyError, TypeError) as exc:
        report.failures.append(
            Failure(fmt.RUNS, None, "malformed", f"runs or approvals unreadable: {exc}")
        )
        return
    for d in found:
        report.failures.append(
            Failure(
                fmt.RUNS if d.what.startswith("run ") else fmt.APPROVALS,
                d.what,
                "unbacked",
                f"{d.field} is {d.table!r} but the audit chain says {d.chain!r}",
            )
        )


def _lines(contents: dict[str, bytes], name: str) -> list[dict[str, Any]]:
    text = contents.get(name, b"").decode(errors="replace")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _check_bundles(
    manifest: dict[str, Any], contents: dict[str, bytes], report: EvidenceReport
) -> None:
    for version, info in sorted((manifest.get("bundles") or {}).items()):
        if not info.get("available"):
            report.missing_bundles.append(version)
            continue
        folder = f"{info['folder']}files/"
        files = {}
        for relative in info["files"]:
            data = contents.get(folder + relative)
            if data is None:
                report.failures.append(
                    Failure(
                        folder + relative,
                        f"bundle {version}",
                        "missing",
                        "a bundle file is missing",
                    )
                )
                continue
            files[relative] = data
        listed = set(info["files"])
        for name in sorted(contents):
            if name.startswith(folder) and name[len(folder) :] not in listed:
                report.failures.append(
                    Failure(name, f"bundle {version}", "added", "not one of the bundle's files")
                )
        digest = bundle_digest(files)
        expected = str(BundleVersion(str(info["label"]), digest))
        if digest != info["digest"] or expected != version:
            report.failures.append(
                Failure(
                    info["folder"],
                    f"bundle {version}",
                    "bundle hash",
                    f"its files hash to {expected}, not to the version they claim",
                )
            )
        report.bundles += 1
