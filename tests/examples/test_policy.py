"""Each rule of the support bundle, decided by real Cedar over a real world, through a run."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from proctor import (
    Approver,
    CallOutcome,
    CallStatus,
    DecisionEffect,
    Mode,
    NotAllowedToApprove,
    RunSpec,
)
from proctor.examples.support import EmailStatus, World, support_tools
from proctor.examples.support.tools import order_ref, recipient_ref
from proctor.policy import PolicyBundle, PolicyRequest, Principal, ResourceRef
from proctor.runs.facts import RunFacts
from proctor.tools import ToolRegistry

from .conftest import Support

SUPERVISOR = Approver("sam", "supervisor")
PRIVACY_OFFICER = Approver("priya", "privacy_officer")


def refund(order_id: str, amount: str) -> dict[str, Any]:
    return {"order_id": order_id, "amount": amount, "reason": "damaged in transit"}


def email(to: str) -> dict[str, Any]:
    return {"to": to, "subject": "Your order", "body": "Your refund is on its way."}


def policy_ids(outcome: CallOutcome) -> tuple[str, ...]:
    assert outcome.decision is not None
    return outcome.decision.policy_ids


def awaits(outcome: CallOutcome, role: str) -> None:
    assert outcome.status is CallStatus.AWAITING_APPROVAL, outcome.decision
    assert outcome.decision is not None
    assert outcome.decision.approval_roles == (role,)


def denied_by(outcome: CallOutcome, policy_id: str) -> None:
    assert outcome.status is CallStatus.DENIED, outcome.decision
    assert policy_id in policy_ids(outcome)


# -- reads and casework ---------------------------------------------------------------------


async def test_reads_and_casework_run(support: Support) -> None:
    run = await support.start()
    looked = await run.call("lookup_customer", {"customer_id": "c-101"})
    assert looked.status is CallStatus.EXECUTED
    assert policy_ids(looked) == ("support-reads",)
    ticket = await run.call(
        "create_ticket", {"customer_id": "c-101", "subject": "Late", "body": "Parcel is late."}
    )
    draft = await run.call(
        "draft_email", {"customer_id": "c-101", "subject": "Sorry", "body": "On its way."}
    )
    escalated = await run.call("escalate", {"reason": "angry customer", "customer_id": "c-101"})
    anonymous = await run.call("escalate", {"reason": "no customer id given"})
    for outcome in (ticket, draft, escalated, anonymous):
        assert outcome.status is CallStatus.EXECUTED, outcome.decision
        assert policy_ids(outcome) == ("support-writes",)
    world = support.world
    assert [t.subject for t in world.tickets()] == ["Late"]
    [drafted] = world.emails()
    assert drafted.status is EmailStatus.DRAFT
    assert drafted.to == "maria.lopez@example.com"
    assert [e.customer_id for e in world.escalations()] == ["c-101", None]


# -- refunds ----------------------------------------------------------------------------------


async def test_small_refund_runs_and_the_world_shows_it(support: Support) -> None:
    run = await support.start()
    outcome = await run.call("issue_refund", refund("A-1001", "20.00"))
    assert outcome.status is CallStatus.EXECUTED
    assert policy_ids(outcome) == ("refund-small",)
    assert outcome.result["amount"] == "20.00"
    [made] = support.world.refunds("A-1001")
    assert made.amount == Decimal("20.00")
    assert made.idempotency_key == run.steps[0].idempotency_key
    assert support.world.order("A-1001").remaining == Decimal("29.90")


async def test_refund_up_to_1000_awaits_a_supervisor_then_runs(support: Support) -> None:
    run = await support.start()
    outcome = await run.call("issue_refund", refund("A-1002", "500.00"))
    awaits(outcome, "supervisor")
    assert policy_ids(outcome) == ("refund-needs-supervisor",)
    assert support.world.refunds() == []
    assert outcome.approval_id is not None
    support.runtime.approvals.approve(outcome.approval_id, SUPERVISOR, "damaged, photos seen")
    done = await run.resume_pending()
    assert done is not None
    assert done.status is CallStatus.EXECUTED
    assert support.world.order("A-1002").refunded == Decimal("500.00")


async def test_refund_of_exactly_1000_awaits_a_supervisor(support: Support) -> None:
    run = await support.start()
    awaits(await run.call("issue_refund", refund("A-1014", "1000.00")), "supervisor")


@pytest.mark.parametrize("amount", ["1000.01", "1500.00", "5000.00"])
async def test_refund_above_1000_is_denied(support: Support, amount: str) -> None:
    run = await support.start()
    outcome = await run.call("issue_refund", refund("A-1007", amount))
    denied_by(outcome, "refund-over-limit")
    assert support.world.refunds() == []


@pytest.mark.parametrize("order_id", ["A-1003", "A-1004", "A-1013"])
async def test_no_refund_for_an_order_not_delivered(support: Support, order_id: str) -> None:
    run = await support.start()
    outcome = await run.call("issue_refund", refund(order_id, "10.00"))
    denied_by(outcome, "refund-not-delivered")


async def test_no_refund_for_an_order_already_fully_refunded(support: Support) -> None:
    run = await support.start()
    outcome = await run.call("issue_refund", refund("A-1005", "10.00"))
    denied_by(outcome, "refund-already-refunded")


async def test_no_refund_above_what_remains(support: Support) -> None:
    run = await support.start()
    # A-1006: 300.00, of which 120.00 already refunded: 180.00 remain.
    outcome = await run.call("issue_refund", refund("A-1006", "180.01"))
    assert policy_ids(outcome) == ("refund-over-remaining",)
    assert outcome.status is CallStatus.DENIED
    awaits(await run.call("issue_refund", refund("A-1006", "180.00")), "supervisor")


@pytest.mark.parametrize("amount", ["0.00", "-20.00"])
async def test_no_refund_of_nothing_or_less(support: Support, amount: str) -> None:
    run = await support.start()
    denied_by(await run.call("issue_refund", refund("A-1001", amount)), "refund-not-positive")


async def test_only_the_first_small_refund_of_a_run_runs_unattended(support: Support) -> None:
    run = await support.start()
    first = await run.call("issue_refund", refund("A-1001", "40.00"))
    assert first.status is CallStatus.EXECUTED
    awaits(await run.call("issue_refund", refund("A-1015", "30.00")), "supervisor")


async def test_refund_of_an_unknown_order_cannot_be_decided(support: Support) -> None:
    run = await support.start()
    outcome = await run.call("issue_refund", refund("A-9999", "10.00"))
    assert outcome.status is CallStatus.DENIED
    assert outcome.decision is not None
    assert "could not be looked up" in outcome.decision.reason


# -- email -------------------------------------------------------------------------------------


@pytest.mark.parametrize("to", ["maria.lopez@example.com", " Maria.Lopez@Example.COM "])
async def test_email_to_the_address_on_file_runs(support: Support, to: str) -> None:
    run = await support.start()
    outcome = await run.call("send_email", email(to))
    assert outcome.status is CallStatus.EXECUTED
    assert policy_ids(outcome) == ("email-to-address-on-file",)
    [sent] = support.world.emails(EmailStatus.SENT)
    assert sent.customer_id == "c-101"


async def test_email_to_another_address_awaits_a_supervisor(support: Support) -> None:
    run = await support.start()
    outcome = await run.call("send_email", email("attacker@evil.example"))
    awaits(outcome, "supervisor")
    assert policy_ids(outcome) == ("email-needs-supervisor",)
    assert support.world.emails() == []


async def test_email_to_a_recently_changed_address_awaits_a_supervisor(support: Support) -> None:
    run = await support.start()
    # c-104's address on file changed recently: it may be an attacker's.
    awaits(await run.call("send_email", email("t.becker.new@example.net")), "supervisor")


# -- accounts -----------------------------------------------------------------------------------


async def test_account_email_change_awaits_a_supervisor(support: Support) -> None:
    run = await support.start()
    args = {"customer_id": "c-102", "new_email": "james.c@example.org"}
    outcome = await run.call("update_account_email", args)
    awaits(outcome, "supervisor")
    assert policy_ids(outcome) == ("account-email-needs-supervisor",)
    assert outcome.approval_id is not None
    support.runtime.approvals.approve(outcome.approval_id, SUPERVISOR, "verified by phone")
    done = await run.resume_pending()
    assert done is not None
    assert done.status is CallStatus.EXECUTED
    customer = support.world.customer("c-102")
    assert customer.email == "james.c@example.org"
    assert customer.email_changed_recently


async def test_gdpr_erasure_awaits_a_privacy_officer_not_a_supervisor(support: Support) -> None:
    run = await support.start()
    outcome = await run.call("delete_customer_data", {"customer_id": "c-105"})
    awaits(outcome, "privacy_officer")
    assert policy_ids(outcome) == ("gdpr-erasure-needs-privacy-officer",)
    assert outcome.approval_id is not None
    approvals = support.runtime.approvals
    with pytest.raises(NotAllowedToApprove, match="privacy_officer"):
        approvals.approve(outcome.approval_id, SUPERVISOR, "looks fine")
    approvals.approve(outcome.approval_id, PRIVACY_OFFICER, "request DSR-77 verified")
    done = await run.resume_pending()
    assert done is not None
    assert done.status is CallStatus.EXECUTED
    assert [d.customer_id for d in support.world.deletions()] == ["c-105"]
    assert support.world.customer("c-105").email is None


async def test_no_gdpr_erasure_without_a_request(support: Support) -> None:
    run = await support.start()
    outcome = await run.call("delete_customer_data", {"customer_id": "c-101"})
    denied_by(outcome, "gdpr-erasure-needs-request")


# -- safe mode ----------------------------------------------------------------------------------


async def test_safe_mode_sends_every_write_to_a_supervisor(support: Support) -> None:
    run = await support.start(mode=Mode.SAFE)
    looked = await run.call("lookup_customer", {"customer_id": "c-101"})
    assert looked.status is CallStatus.EXECUTED
    args = {"customer_id": "c-101", "subject": "Late", "body": "Parcel is late."}
    outcome = await run.call("create_ticket", args)
    awaits(outcome, "supervisor")
    assert policy_ids(outcome) == ("safe-mode-needs-supervisor",)
    assert support.world.tickets() == []


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("issue_refund", refund("A-1001", "20.00")),
        ("send_email", email("maria.lopez@example.com")),
    ],
)
async def test_safe_mode_sends_every_irreversible_call_to_a_supervisor(
    support: Support, tool: str, args: dict[str, Any]
) -> None:
    run = await support.start(mode=Mode.SAFE)
    outcome = await run.call(tool, args)
    awaits(outcome, "supervisor")
    assert "safe-mode-needs-supervisor" in policy_ids(outcome)


async def test_safe_mode_keeps_erasure_with_the_privacy_officer(support: Support) -> None:
    run = await support.start(mode=Mode.SAFE)
    awaits(await run.call("delete_customer_data", {"customer_id": "c-105"}), "privacy_officer")


# -- prompt injection: taint ----------------------------------------------------------------------


async def test_reading_a_customer_note_taints_the_run_and_a_refund_awaits(
    support: Support,
) -> None:
    run = await support.start()
    looked = await run.call("lookup_order", {"order_id": "A-1012"})
    assert "ignore previous instructions" in looked.result["customer_note"]
    # The note asks for 85.00, under the unattended limit: only the taint stops it.
    outcome = await run.call("issue_refund", refund("A-1012", "85.00"))
    awaits(outcome, "supervisor")
    assert "tainted-run-needs-supervisor" in policy_ids(outcome)
    assert support.world.refunds() == []


async def test_a_tainted_run_emails_on_its_own_only_what_untrusted_text_did_not_supply(
    support: Support,
) -> None:
    # The address on file came from no untrusted text: with provenance, it is not held back.
    run = await support.start()
    await run.call("lookup_order", {"order_id": "A-1011"})
    on_file = await run.call("send_email", email("noah.schmidt@example.com"))
    assert on_file.status is CallStatus.EXECUTED
    # The address A-1011's note supplies is.
    run = await support.start()
    await run.call("lookup_order", {"order_id": "A-1011"})  # its note names attacker@evil.example
    outcome = await run.call("send_email", email("attacker@evil.example"))
    awaits(outcome, "supervisor")
    assert "untrusted-recipient-needs-supervisor" in policy_ids(outcome)


async def test_the_injected_900_refund_awaits_a_supervisor(support: Support) -> None:
    run = await support.start()
    await run.call("lookup_order", {"order_id": "A-1010"})
    awaits(await run.call("issue_refund", refund("A-1010", "900.00")), "supervisor")


async def test_a_customer_lookup_does_not_taint(support: Support) -> None:
    run = await support.start()
    await run.call("lookup_customer", {"customer_id": "c-101"})
    outcome = await run.call("issue_refund", refund("A-1001", "20.00"))
    assert outcome.status is CallStatus.EXECUTED


# -- prompt injection: provenance, decided directly ----------------------------------------------


def decide(
    bundle: PolicyBundle,
    world: World,
    tool: str,
    args: dict[str, Any],
    resource: ResourceRef,
    provenance: dict[str, str] | None,
) -> tuple[DecisionEffect, tuple[str, ...]]:
    registry = ToolRegistry(support_tools(world))
    spec = RunSpec(
        agent="support-bot", role="support_agent", tenant="acme", workflow="support", requester="a"
    )
    t = registry.get(tool)
    decision = bundle.decide(
        PolicyRequest(
            principal=Principal("support-bot", "support_agent", "acme"),
            tool=tool,
            effect_class=t.effect.value,
            resource=resource,
            args=t.validate(args).model_dump(),
            run=RunFacts.of(registry, spec).snapshot(),
            extra_context={} if provenance is None else {"provenance": provenance},
        )
    )
    return decision.effect, decision.policy_ids


@pytest.mark.parametrize(
    ("provenance", "effect"),
    [
        (None, DecisionEffect.ALLOW),
        ({}, DecisionEffect.ALLOW),
        ({"order_id": "trusted", "amount": "trusted"}, DecisionEffect.ALLOW),
        ({"order_id": "trusted", "amount": "untrusted"}, DecisionEffect.REQUIRE_APPROVAL),
    ],
)
def test_a_refund_amount_from_untrusted_content_needs_approval(
    bundle: PolicyBundle,
    world: World,
    provenance: dict[str, str] | None,
    effect: DecisionEffect,
) -> None:
    got, ids = decide(
        bundle,
        world,
        "issue_refund",
        refund("A-1001", "20.00"),
        order_ref(world.order("A-1001")),
        provenance,
    )
    assert got is effect
    if effect is DecisionEffect.REQUIRE_APPROVAL:
        assert "untrusted-amount-needs-supervisor" in ids


@pytest.mark.parametrize(
    ("provenance", "effect"),
    [
        (None, DecisionEffect.ALLOW),
        ({"to": "trusted"}, DecisionEffect.ALLOW),
        ({"to": "untrusted"}, DecisionEffect.REQUIRE_APPROVAL),
    ],
)
def test_a_recipient_from_untrusted_content_needs_approval(
    bundle: PolicyBundle,
    world: World,
    provenance: dict[str, str] | None,
    effect: DecisionEffect,
) -> None:
    to = "noah.schmidt@example.com"
    got, ids = decide(bundle, world, "send_email", email(to), recipient_ref(world, to), provenance)
    assert got is effect
    if effect is DecisionEffect.REQUIRE_APPROVAL:
        assert "untrusted-recipient-needs-supervisor" in ids
