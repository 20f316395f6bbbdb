"""Only what policies read is sent to Cedar, and the answers stay the same."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import cedarpy
import pytest

from proctor.policy import PolicyBundle, PolicyRequest
from proctor.policy._footprint import Footprint

from .helpers import SUPPORT, call, order, refund


def footprint(*conditions: str) -> Footprint:
    text = "\n".join(f"permit(principal, action, resource) when {{ {c} }};" for c in conditions)
    document = json.loads(cedarpy.policies_to_json_str(text))
    return Footprint.of(
        clause["body"]
        for policy in document["staticPolicies"].values()
        for clause in policy["conditions"]
    )


def test_reads_are_collected_from_chains_and_has() -> None:
    reads = footprint(
        "context.args.amount > 1 && context has provenance",
        'context.provenance has amount && resource.status == "x" && resource has owner',
        'principal.tenant == "acme"',
    )

    assert reads.context == {"args": {"amount": None}, "provenance": {"amount": {}}}
    assert reads.resource_attrs == frozenset({"status", "owner"})


def test_a_whole_record_read_wins_over_parts() -> None:
    reads = footprint("context.args.a == 1", "context.args == {a: 1}", "context.run.x.y == 2")

    assert reads.context == {"args": None, "run": {"x": {"y": None}}}


@pytest.mark.parametrize("text", ["context == {}", "[context].contains({})"])
def test_a_bare_context_reads_everything(text: str) -> None:
    assert footprint(text, "context.args.a == 1").context is None


def test_tags_read_the_whole_resource() -> None:
    assert footprint('resource.hasTag("t")').resource_attrs is None


def test_no_resource_reads_means_no_resource_entity() -> None:
    reads = footprint('resource is Order && resource in Shop::"s"')

    assert reads.resource_attrs == frozenset()
    assert reads.resource_entity(order()) is None


def test_context_is_projected() -> None:
    reads = footprint("context.args.amount > 1 && context has provenance")
    request = refund("20", provenance={"amount": "trusted", "extra": "x"})

    assert json.loads(reads.context_json(request)) == {
        "args": {"amount": {"__extn": {"fn": "decimal", "arg": "20.0000"}}},
        "provenance": {},
    }


REQUESTS: list[PolicyRequest] = [
    refund("20.00"),
    refund("250.00"),
    refund("250.00", provenance={"amount": "untrusted"}),
    refund("20.00", resource=order(status="shipped")),
    refund("20.00", resource=order(tenant="globex")),
    refund("20.00", mode="safe"),
    refund(None),
    replace(refund(), args={"order_id": "A-1", "amount": "lots"}),
    refund("20.00", role="viewer"),
    call("get_order", "read", resource=order(total=Decimal("3.5"))),
    call("get_order", "read", resource=order(tenant="globex")),
    call("get_order", "read"),
    call("delete_customer", "irreversible"),
]


@pytest.fixture(scope="module")
def reads_everything() -> PolicyBundle:
    bundle = PolicyBundle.load(SUPPORT)
    bundle._engine.footprint = Footprint(context=None, resource_attrs=None)
    return bundle


@pytest.mark.parametrize("request_", REQUESTS)
def test_projected_and_full_requests_decide_alike(
    support: PolicyBundle, reads_everything: PolicyBundle, request_: PolicyRequest
) -> None:
    projected = support.decide(request_)
    full = reads_everything.decide(request_)

    assert (projected.effect, projected.policy_ids, projected.errors, projected.reason) == (
        full.effect,
        full.policy_ids,
        full.errors,
        full.reason,
    )
