"""What an evidence bundle holds: the audit log, the policies in force, reports, an index."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa

from proctor import Approver, CallStatus
from proctor.audit.chain import Envelope
from proctor.evidence.format import EvidenceError, parse_moment
from proctor.evidence.verify import verify_evidence
from proctor.retention.settings import RetentionSettings
from proctor.store.tables import policy_bundles
from tests.audit.conftest import KINDS, LAST, TENANT, governed_run
from tests.retention.conftest import purge_now
from tests.shop import POLICY, Env, write_bundle

from .conftest import SINCE, UNTIL, Exported, read_zip


async def test_the_zip_holds_every_part_and_the_manifest_lists_each_file_hash(
    exported: Exported,
) -> None:
    files = exported.files()
    manifest = exported.manifest()
    version = str(exported.rt.policy.version)
    folder = f"bundles/{exported.rt.policy.version.digest[:12]}/"
    assert set(files) == {
        "manifest.json",
        "audit.jsonl",
        "runs.jsonl",
        "approvals.jsonl",
        "index.html",
        "reports/latest/report.json",
        f"{folder}files/policy.cedar",
        f"{folder}files/proctor.yaml",
        f"{folder}matrix.json",
        f"{folder}settings.json",
    }
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    for name, listed in manifest["files"].items():
        assert listed["sha256"] == hashlib.sha256(files[name]).hexdigest()
    assert manifest["range"] == {
        "since": "2025-12-31T00:00:00.000000+00:00",
        "until": "2026-01-02T00:00:00.000000+00:00",
    }
    assert manifest["tenants"] == [TENANT]
    assert manifest["signature"]["key_id"] == exported.rt.key.key_id
    chain = manifest["chains"][TENANT]
    assert (chain["first_seq"], chain["last_seq"]) == (1, LAST)
    assert chain["head"]["seq"] == LAST
    assert [c["seq"] for c in chain["checkpoints"]] == [LAST]
    assert manifest["bundles"][version]["files"] == ["policy.cedar", "proctor.yaml"]
    matrix = json.loads(files[f"{folder}matrix.json"])
    assert matrix["bundle_version"] == version
    assert "refund" in {t["name"] for t in matrix["tools"]}
    settings = json.loads(files[f"{folder}settings.json"])
    assert set(settings) >= {"retention", "redaction"}
    # Only the eval report created inside the range, once.
    assert [r["file"] for r in manifest["reports"]] == ["reports/latest/report.json"]


async def test_the_audit_log_holds_envelopes_and_payloads_exactly_as_stored(
    exported: Exported,
) -> None:
    lines = [json.loads(line) for line in exported.files()["audit.jsonl"].splitlines()]
    assert [line["kind"] for line in lines] == KINDS
    for line in lines:
        envelope = Envelope(**{k: line[k] for k in Envelope.__dataclass_fields__})
        assert envelope.computed_hash() == envelope.entry_hash
        assert hashlib.sha256(line["payload"].encode()).hexdigest() == line["payload_hash"]
        assert line["purged"] is None


async def test_the_runs_and_approvals_of_the_range_are_listed(exported: Exported) -> None:
    files = exported.files()
    (run,) = [json.loads(line) for line in files["runs.jsonl"].splitlines()]
    assert (run["id"], run["state"], run["tenant"]) == (exported.run_id, "completed", TENANT)
    (approval,) = [json.loads(line) for line in files["approvals.jsonl"].splitlines()]
    assert (approval["decided_by"], approval["decider_role"], approval["decision_reason"]) == (
        "sam",
        "supervisor",
        "checked the photos",
    )


async def test_a_range_with_nothing_in_it_exports_an_empty_but_valid_bundle(
    exported: Exported,
) -> None:
    from datetime import UTC, datetime

    out = exported.export(
        "empty.zip", since=datetime(2024, 1, 1, tzinfo=UTC), until=datetime(2024, 2, 1, tzinfo=UTC)
    )
    manifest = json.loads(read_zip(out)["manifest.json"])
    assert manifest["chains"] == {}
    assert manifest["reports"] == []
    report = verify_evidence(out)
    assert report.ok, report.failures
    assert report.entries == 0


async def test_each_tenant_or_one_alone(exported: Exported) -> None:
    await governed_run(exported.env, exported.rt, tenant="globex")
    both = json.loads(read_zip(exported.export("both.zip"))["manifest.json"])
    assert sorted(both["chains"]) == ["acme", "globex"]
    one = read_zip(exported.export("one.zip", tenant="globex"))
    assert sorted(json.loads(one["manifest.json"])["chains"]) == ["globex"]
    assert {json.loads(line)["tenant"] for line in one["audit.jsonl"].splitlines()} == {"globex"}
    with pytest.raises(EvidenceError, match="no audit entries or runs for tenant 'initech'"):
        exported.export("none.zip", tenant="initech")


async def test_every_bundle_version_in_force_is_kept_and_exported(exported: Exported) -> None:
    env = exported.env
    changed = write_bundle(env.tmp / "bundle-v2", POLICY + "\n// tightened later\n")
    rt2 = env.runtime(policy=changed)
    await governed_run(env, rt2)
    with rt2.store.read() as conn:
        kept = {r.version for r in conn.execute(sa.select(policy_bundles))}
    versions = {str(exported.rt.policy.version), str(rt2.policy.version)}
    assert kept == versions
    files = read_zip(exported.export("two.zip"))
    manifest = json.loads(files["manifest.json"])
    assert set(manifest["bundles"]) == versions
    folder = manifest["bundles"][str(rt2.policy.version)]["folder"]
    assert files[f"{folder}files/policy.cedar"].endswith(b"// tightened later\n")
    assert verify_evidence(env.tmp / "two.zip").ok


async def test_purged_payloads_are_exported_marked_purged_and_still_verify(
    exported: Exported,
) -> None:
    purge_now(
        exported.rt,
        RetentionSettings.model_validate({"default": {"payloads": "1h"}}),
        days_later=0.5,
    )
    out = exported.export("purged.zip", until=UNTIL.replace(day=3))
    lines = [json.loads(line) for line in read_zip(out)["audit.jsonl"].splitlines()]
    purged = [line for line in lines if line["purged"] is not None]
    assert len(purged) == LAST
    assert all(line["payload"] is None for line in purged)
    assert {line["purged"]["rule"] for line in purged} == {"retention.default.payloads=1h"}
    assert lines[-1]["kind"] == "retention.purged"
    report = verify_evidence(out)
    assert report.ok, report.failures
    assert report.purged == LAST


async def test_the_index_page_says_who_approved_and_escapes_what_people_typed(
    env: Env,
) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec(requester="<b>mallory</b>"))
    denied = await run.call("refund", {"order_id": "A-1", "amount": "5000.00"})
    assert denied.status is CallStatus.DENIED
    held = await run.call("refund", {"order_id": "A-1", "amount": "500.00"}, reason="x")
    assert held.status is CallStatus.AWAITING_APPROVAL
    assert held.approval_id is not None
    reason = "<script>alert('pwned')</script> & ok"
    rt.approvals.approve(held.approval_id, Approver("sam", "supervisor"), reason)
    out = env.tmp / "e.zip"
    from proctor.evidence.export import export_evidence

    export_evidence(rt, out, since=SINCE, until=UNTIL)
    page = read_zip(out)["index.html"].decode()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt; &amp; ok" in page
    assert "What was approved or refused, and by whom" in page
    assert "sam" in page
    assert "supervisor" in page
    assert "What was denied" in page


async def test_an_export_signs_the_head_when_no_checkpoint_covers_the_range_yet(
    env: Env,
) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    assert (await run.call("lookup", {"order_id": "A-1"})).status is CallStatus.EXECUTED
    from proctor.evidence.export import export_evidence

    summary = export_evidence(rt, env.tmp / "live.zip", since=SINCE, until=UNTIL)
    assert summary.signed_heads == [TENANT]
    report = verify_evidence(env.tmp / "live.zip", rt.key.verify_key)
    assert report.ok, report.failures
    assert report.checkpoints == 1


@pytest.mark.parametrize(
    ("text", "end", "expected"),
    [
        ("2026-11-01", False, "2026-11-01T00:00:00+00:00"),
        ("2026-11-01", True, "2026-11-02T00:00:00+00:00"),
        ("2026-11-01T09:30:00Z", False, "2026-11-01T09:30:00+00:00"),
        ("2026-11-01T09:30:00+02:00", True, "2026-11-01T07:30:00+00:00"),
    ],
)
def test_range_bounds_are_dates_or_times_in_utc(text: str, end: bool, expected: str) -> None:
    assert parse_moment(text, "--until", end_of_day=end).isoformat() == expected


def test_a_bad_date_is_an_error_naming_the_option_and_an_example() -> None:
    with pytest.raises(EvidenceError, match=r"--since must be a date like 2026-11-01.*'last week'"):
        parse_moment("last week", "--since")


async def test_an_empty_range_is_refused(exported: Exported) -> None:
    with pytest.raises(EvidenceError, match="must be after --since"):
        exported.export("x.zip", since=UNTIL, until=SINCE)
