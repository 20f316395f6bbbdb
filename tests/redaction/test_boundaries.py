"""Redaction where data is stored: the journal, audit payloads, approvals, run details, logs.

Each test plants real-looking sensitive values in what a tool receives, returns or
raises, and then reads every stored copy back: none may hold the value, while the
run itself still works with the whole value (replay, approvals, grounding).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from proctor import CallStatus, Runtime
from proctor.approvals import Approver
from proctor.errors import PolicyError
from proctor.policy import PolicyBundle
from proctor.redaction.logs import RedactingFilter
from proctor.states import Reason
from proctor.store.tables import approvals, audit_payloads, runs, steps
from tests.shop import Env

EMAIL = "dana.whitfield@example.org"
CARD = "4111 1111 1111 1111"
KEY = "sk_live_51HxQ2fGx8Vq3kLmN0pRs7TuVwXyZ"
PLANTED = (EMAIL, CARD, KEY, "4111111111111111")


def _bundle(env: Env, redaction: dict[str, Any]) -> Path:
    settings = {"label": "test-shop", "approvals": {"ttl_s": 3600}, "redaction": redaction}
    (env.bundle / "proctor.yaml").write_text(yaml.safe_dump(settings))
    return env.bundle


def _dump(rt: Runtime) -> str:
    """Every stored text a person with database access could read."""
    parts: list[str] = []
    with rt.store.read() as conn:
        for table in (steps, runs, approvals, audit_payloads):
            for row in conn.execute(sa.select(table)):
                parts.append(repr(tuple(row)))
    return "\n".join(parts)


def _leaks(text: str) -> list[str]:
    return [p for p in PLANTED if p in text]


async def test_nothing_sensitive_is_stored_and_the_run_still_has_it_whole(env: Env) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    text = f"customer {EMAIL} paid with {CARD}, key {KEY}"
    written = await run.call("note", {"text": text}, reason=f"note for {EMAIL}")
    assert written.status is CallStatus.EXECUTED
    assert written.result == text  # the caller gets the tool's answer whole
    failed = await run.call("explode", {"reason": f"card {CARD} declined"})
    assert failed.status is CallStatus.FAILED
    stored = _dump(rt)
    assert _leaks(stored) == []
    assert "[redacted:email]" in stored
    assert "[redacted:card]" in stored
    assert "[redacted:secret]" in stored

    # Replay after a restart gives the code the whole result back, from the seal.
    await run.release()
    again = await env.runtime().resume(run.id)
    replayed = await again.call("note", {"text": text}, reason=f"note for {EMAIL}")
    assert replayed.replayed
    assert replayed.result == text
    await again.complete(f"done for {EMAIL}")
    with rt.store.read() as conn:
        seals = conn.execute(
            sa.select(steps.c.sealed_result).where(steps.c.sealed_result.is_not(None))
        ).all()
    assert seals == []  # a run that ended needs nothing whole again
    assert _leaks(_dump(rt)) == []
    assert rt.verify_audit().ok


async def test_hash_mode_keeps_equal_values_linkable_per_tenant(env: Env) -> None:
    _bundle(env, {"default": {"mode": "mask"}, "tenants": {"acme": {"kinds": {"email": "hash"}}}})
    rt = env.runtime()
    acme = await rt.start_run(env.spec())
    await acme.call("note", {"text": f"from {EMAIL}"})
    await acme.call("note", {"text": f"again {EMAIL}, other {CARD}"})
    globex = await rt.start_run(env.spec(tenant="globex"))
    await globex.call("note", {"text": f"from {EMAIL}"})
    with rt.store.read() as conn:
        stored = dict(
            conn.execute(
                sa.select(steps.c.idx, steps.c.result).where(steps.c.run_id == acme.id)
            ).all()
        )
        other = conn.execute(sa.select(steps.c.result).where(steps.c.run_id == globex.id))
        globex_result = other.scalar_one()
    token = stored[0].removeprefix("from ")
    assert token.startswith("[email:")
    assert len(token) == len("[email:") + 12 + 1
    assert stored[1] == f"again {token}, other [redacted:card]"  # card: the default mask
    assert globex_result == "from [redacted:email]"  # globex keeps the default
    assert _leaks(_dump(rt)) == []


async def test_drop_mode_removes_values_and_declared_fields(env: Env) -> None:
    _bundle(env, {"default": {"mode": "drop", "fields": ["body"]}})
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    await run.call("note", {"text": f"write to {EMAIL} now"})
    out = await run.call("send_email", {"to": EMAIL, "body": "your refund"})
    assert out.status is CallStatus.EXECUTED
    with rt.store.read() as conn:
        rows = dict(
            conn.execute(sa.select(steps.c.idx, steps.c.args).where(steps.c.run_id == run.id)).all()
        )
    assert rows[0] == {"text": "write to  now"}
    assert rows[1] == {}  # both fields declared sensitive (the tool's and the bundle's)
    assert [body for _, _, body in env.ledger.effects("send_email")] == [f"{EMAIL}:your refund"]


async def test_an_approved_call_runs_with_its_whole_arguments(env: Env) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    held = await run.call("refund", {"order_id": f"A-1 for {EMAIL}", "amount": "500.00"})
    assert held.status is CallStatus.AWAITING_APPROVAL
    assert held.approval_id
    await run.release()
    rt.approvals.approve(held.approval_id, Approver("sam", "supervisor"), f"ok, {EMAIL} checked")
    resumed = await env.runtime().resume(run.id)
    done = await resumed.resume_pending()
    assert done is not None
    assert done.status is CallStatus.EXECUTED
    assert [body for _, _, body in env.ledger.effects("refund")] == [f"A-1 for {EMAIL}:500.00"]
    assert _leaks(_dump(rt)) == []


async def test_a_run_end_detail_is_redacted(env: Env) -> None:
    rt = env.runtime()
    run = await rt.start_run(env.spec())
    await run.hand_off(Reason.ESCALATED, f"customer {EMAIL} asked for a person")
    with rt.store.read() as conn:
        detail = conn.execute(sa.select(runs.c.reason_detail)).scalar_one()
    assert detail == "customer [redacted:email] asked for a person"
    assert _leaks(_dump(rt)) == []


def test_a_bad_redaction_mode_names_the_value(env: Env) -> None:
    _bundle(env, {"default": {"mode": "scramble"}})
    allowed = r"proctor.yaml:\d+: `redaction.default.mode`: .*'mask', 'hash', 'drop' or 'keep'"
    with pytest.raises(PolicyError, match=allowed):
        PolicyBundle.load(env.bundle)
    _bundle(env, {"tenants": {"acme": {"kinds": {"postcode": "mask"}}}})
    with pytest.raises(PolicyError, match=r"`redaction.tenants.acme.kinds.postcode"):
        PolicyBundle.load(env.bundle)


def test_logs_are_redacted_before_any_handler_writes_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("proctor.test.redaction")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="proctor.test.redaction"):
        logger.info("refund for %s on card %s", EMAIL, CARD)
        try:
            raise ValueError(f"bad key {KEY}")
        except ValueError:
            logger.exception("tool failed for %s", EMAIL)
    assert _leaks(caplog.text) == []
    assert "refund for [redacted:email] on card [redacted:card]" in caplog.text
    assert "bad key [redacted:secret]" in caplog.text
