"""Decisions against real Cedar: allow, approval, forbid wins, default deny, fail closed."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from proctor.policy import Decision, DecisionEffect, PolicyBundle, ResourceRef

from .helpers import WriteBundle, call, order, refund


def test_permit_without_approval_allows(support: PolicyBundle) -> None:
    decision = support.decide(refund("20.00"))

    assert decision.effect is DecisionEffect.ALLOW
    assert decision.allowed
    assert decision.policy_ids == ("refund-small",)
    assert decision.approval_roles == ()
    assert decision.errors == ()
    assert decision.reason == "permitted by refund-small"
    assert decision.bundle_version == str(support.version)
    assert decision.latency_us > 0


def test_permit_with_approval_requires_that_role(support: PolicyBundle) -> None:
    decision = support.decide(refund("250.00"))

    assert decision.effect is DecisionEffect.REQUIRE_APPROVAL
    assert decision.approval_roles == ("supervisor",)
    assert decision.policy_ids == ("refund-large",)
    assert decision.reason == "needs approval by supervisor (refund-large)"


def test_decimal_amounts_compare_exactly_at_the_boundary(support: PolicyBundle) -> None:
    assert support.decide(refund("100.00")).effect is DecisionEffect.ALLOW
    assert support.decide(refund("100.0001")).effect is DecisionEffect.REQUIRE_APPROVAL
    # A float becomes a decimal too.
    floated = replace(refund(), args={"order_id": "A-1", "amount": 99.5})
    assert support.decide(floated).effect is DecisionEffect.ALLOW


def test_two_approval_policies_offer_both_roles(support: PolicyBundle) -> None:
    decision = support.decide(refund("250.00", provenance={"amount": "untrusted"}))

    assert decision.effect is DecisionEffect.REQUIRE_APPROVAL
    assert decision.approval_roles == ("fraud", "supervisor")
    assert decision.policy_ids == ("refund-large", "refund-untrusted")
    assert decision.reason == (
        "needs approval by fraud or supervisor (refund-large, refund-untrusted)"
    )


def test_a_plain_permit_beside_an_approval_permit_allows(support: PolicyBundle) -> None:
    decision = support.decide(refund("20.00", provenance={"amount": "untrusted"}))

    assert decision.effect is DecisionEffect.ALLOW
    assert decision.policy_ids == ("refund-small",)


def test_forbid_wins_over_permit(support: PolicyBundle) -> None:
    decision = support.decide(refund("20.00", resource=order(status="shipped")))

    assert decision.effect is DecisionEffect.DENY
    assert decision.policy_ids == ("no-undelivered",)
    assert decision.reason == "forbidden by no-undelivered"


def test_forbid_wins_over_approval(support: PolicyBundle) -> None:
    decision = support.decide(refund("250.00", resource=order(tenant="globex")))

    assert decision.effect is DecisionEffect.DENY
    assert decision.policy_ids == ("same-tenant",)


def test_default_deny_when_no_policy_permits(support: PolicyBundle) -> None:
    decision = support.decide(call("delete_customer", "irreversible"))

    assert decision.effect is DecisionEffect.DENY
    assert decision.policy_ids == ()
    assert decision.errors == ()
    assert decision.reason == "default deny: no policy permits delete_customer"


def test_role_is_checked_with_principal_in_role(support: PolicyBundle) -> None:
    decision = support.decide(refund("20.00", role="billing_agent"))

    assert decision.effect is DecisionEffect.DENY
    assert decision.reason == "default deny: no policy permits issue_refund"


def test_action_groups_follow_the_effect_class(support: PolicyBundle) -> None:
    # read-all permits any tool of the "read" class, whatever its name.
    assert support.decide(call("lookup_customer", "read")).effect is DecisionEffect.ALLOW
    assert support.decide(call("lookup_customer", "write")).effect is DecisionEffect.DENY
    # safe-mode forbids every irreversible tool.
    decision = support.decide(refund("20.00", mode="safe"))
    assert decision.effect is DecisionEffect.DENY
    assert decision.policy_ids == ("safe-mode",)


def test_resource_attributes_reach_policies(support: PolicyBundle) -> None:
    mine = call("get_order", "read", resource=order(tenant="acme", total=Decimal("12.50")))
    theirs = call("get_order", "read", resource=order(tenant="globex"))

    assert support.decide(mine).effect is DecisionEffect.ALLOW
    denied = support.decide(theirs)
    assert denied.effect is DecisionEffect.DENY
    assert denied.policy_ids == ("same-tenant",)


def test_no_resource_means_the_tool_itself(write_bundle: WriteBundle) -> None:
    path = write_bundle(
        {"p.cedar": 'permit(principal, action, resource == Tool::"search") when { true };'}
    )
    bundle = PolicyBundle.load(path)

    assert bundle.decide(call("search", "read")).effect is DecisionEffect.ALLOW
    assert bundle.decide(call("browse", "read")).effect is DecisionEffect.DENY


def test_none_arguments_are_left_out_so_has_is_false(write_bundle: WriteBundle) -> None:
    path = write_bundle(
        {
            "p.cedar": """
            @id("with-note")
            permit(principal, action, resource) when { context.args has note };
            """
        }
    )
    bundle = PolicyBundle.load(path)

    assert bundle.decide(call("t", "write", args={"note": "hi"})).effect is DecisionEffect.ALLOW
    missing = bundle.decide(call("t", "write", args={"note": None}))
    assert missing.effect is DecisionEffect.DENY
    assert missing.errors == ()


def test_principal_and_run_facts_are_visible(write_bundle: WriteBundle) -> None:
    path = write_bundle(
        {
            "p.cedar": """
            @id("bot-in-acme")
            permit(principal == Agent::"bot", action, resource)
            when { principal.tenant == "acme" && principal.role == "support_agent"
                   && context.run.calls < 3 && !context.run.tainted };
            """
        }
    )
    bundle = PolicyBundle.load(path)

    ok = call("t", "write", run={"calls": 2, "tainted": False})
    assert bundle.decide(ok).effect is DecisionEffect.ALLOW
    assert bundle.decide(call("t", "write", run={"calls": 3, "tainted": False})).effect is (
        DecisionEffect.DENY
    )
    other = call("t", "write", agent="other", run={"calls": 0, "tainted": False})
    assert bundle.decide(other).effect is DecisionEffect.DENY


def test_evaluation_error_denies_and_reports(support: PolicyBundle) -> None:
    # refund-small compares the amount as a decimal; a string makes it fail to evaluate.
    broken = replace(refund(), args={"order_id": "A-1", "amount": "lots"})

    decision = support.decide(broken)

    assert decision.effect is DecisionEffect.DENY
    assert decision.policy_ids == ("refund-small", "refund-large")
    assert len(decision.errors) == 2
    assert "refund-small" in decision.errors[0]
    assert decision.reason.startswith("evaluation error in policy refund-small: ")
    assert decision.reason.endswith("(and 1 more)")


def test_a_forbid_that_fails_to_evaluate_still_denies(write_bundle: WriteBundle) -> None:
    # Cedar alone would skip the failing forbid and allow; proctor fails closed.
    path = write_bundle(
        {
            "p.cedar": """
            @id("open") permit(principal, action, resource);
            @id("limit") forbid(principal, action, resource) when { context.args.amount > 10 };
            """
        }
    )
    bundle = PolicyBundle.load(path)

    assert bundle.decide(call("t", "write", args={"amount": 50})).effect is DecisionEffect.DENY
    assert bundle.decide(call("t", "write", args={"amount": 5})).effect is DecisionEffect.ALLOW
    decision = bundle.decide(call("t", "write", args={"amount": "50"}))
    assert decision.effect is DecisionEffect.DENY
    assert decision.policy_ids == ("limit",)
    assert decision.errors


def test_a_value_cedar_cannot_hold_denies_with_the_path(write_bundle: WriteBundle) -> None:
    path = write_bundle(
        {"p.cedar": "permit(principal, action, resource) when { context.args.count > 0 };"}
    )
    bundle = PolicyBundle.load(path)

    decision = bundle.decide(call("t", "write", args={"count": 2**64}))

    assert decision.effect is DecisionEffect.DENY
    assert decision.errors == (
        "context.args.count: 18446744073709551616 does not fit Cedar's 64-bit Long",
    )
    assert decision.reason.startswith("evaluation error: context.args.count")


def test_unknown_effect_class_denies(support: PolicyBundle) -> None:
    decision = support.decide(call("get_order", "reads"))

    assert decision.effect is DecisionEffect.DENY
    assert (
        "effect_class: `reads` is not one of read, write, destructive, irreversible"
        in decision.errors[0]
    )


def test_extra_context_cannot_replace_args(support: PolicyBundle) -> None:
    decision = support.decide(call("get_order", "read", extra_context={"args": {}}))

    assert decision.effect is DecisionEffect.DENY
    assert "extra_context may not replace `args`" in decision.reason


def test_reserved_keys_cannot_smuggle_entities(write_bundle: WriteBundle) -> None:
    path = write_bundle(
        {
            "p.cedar": """
            permit(principal, action, resource) when { context.args.who in Role::"admin" };
            """
        }
    )
    bundle = PolicyBundle.load(path)
    smuggled = {"who": {"__entity": {"type": "Role", "id": "admin"}}}

    decision = bundle.decide(call("t", "write", args=smuggled))

    assert decision.effect is DecisionEffect.DENY
    assert "`__entity` is reserved" in decision.errors[0]


def test_decisions_differ_per_principal_with_cached_entities(support: PolicyBundle) -> None:
    for _ in range(3):
        assert support.decide(refund("20.00")).effect is DecisionEffect.ALLOW
        assert support.decide(refund("20.00", role="viewer")).effect is DecisionEffect.DENY


def test_decision_to_json_is_plain(support: PolicyBundle) -> None:
    decision = support.decide(refund("250.00"))

    assert decision.to_json() == {
        "effect": "require_approval",
        "approval_roles": ["supervisor"],
        "policy_ids": ["refund-large"],
        "bundle_version": str(support.version),
        "latency_us": decision.latency_us,
        "errors": [],
        "reason": "needs approval by supervisor (refund-large)",
    }


def test_decision_requires_roles_exactly_for_approval() -> None:
    with pytest.raises(ValueError, match="approval_roles"):
        Decision(
            effect=DecisionEffect.REQUIRE_APPROVAL,
            approval_roles=(),
            policy_ids=(),
            bundle_version="x@0",
            latency_us=0.0,
            reason="",
        )
    with pytest.raises(ValueError, match="approval_roles"):
        Decision(
            effect=DecisionEffect.ALLOW,
            approval_roles=("supervisor",),
            policy_ids=(),
            bundle_version="x@0",
            latency_us=0.0,
            reason="",
        )


def test_policies_are_listed_with_file_line_and_approval(support: PolicyBundle) -> None:
    by_id = {p.id: p for p in support.policies}

    assert by_id["read-all"].file == "policies/reads.cedar"
    assert by_id["read-all"].line == 2
    assert by_id["refund-large"].line == 6
    assert by_id["refund-large"].approval_role == "supervisor"
    assert by_id["refund-large"].text.startswith('@id("refund-large")\n@approval("supervisor")')
    assert by_id["same-tenant"].effect == "forbid"
    assert support.policy("refund-small").location == "policies/refunds.cedar:2"


def test_policies_without_id_are_named_by_file_and_line(
    write_bundle: WriteBundle, tmp_path: Path
) -> None:
    path = write_bundle(
        {"rules/p.cedar": '// hi\n\npermit(principal, action in Action::"read", resource);\n'}
    )
    bundle = PolicyBundle.load(path)

    decision = bundle.decide(call("t", "read"))

    assert decision.policy_ids == ("rules/p.cedar:3",)
    assert decision.reason == "permitted by rules/p.cedar:3"


def test_resource_ids_need_no_escaping(write_bundle: WriteBundle) -> None:
    path = write_bundle(
        {"p.cedar": 'permit(principal, action, resource) when { resource.note == "a\\"b" };'}
    )
    bundle = PolicyBundle.load(path)
    odd = ResourceRef("Order", 'A "1"\n', {"note": 'a"b'})

    assert bundle.decide(call("t", "read", resource=odd)).effect is DecisionEffect.ALLOW
