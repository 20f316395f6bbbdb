"""The permission matrix, from Cedar's partial evaluation of a small bundle."""

from __future__ import annotations

import pytest

from proctor.policy import CellKind, MatrixCell, PolicyBundle, permission_matrix

from .helpers import WriteBundle

POLICIES = """\
@id("read-all")
permit(principal, action in Action::"read", resource);

@id("refund-small")
permit(principal in Role::"agent", action == Action::"issue_refund", resource)
when { context.args.amount <= 100 };

@id("refund-large")
@approval("supervisor")
permit(principal in Role::"agent", action == Action::"issue_refund", resource)
when { context.args.amount > 100 };

@id("no-undelivered")
forbid(principal, action == Action::"issue_refund", resource is Order)
when { resource.status != "delivered" };

@id("close-with-approval")
@approval("supervisor")
permit(principal in Role::"agent", action == Action::"close_account", resource);

@id("escalate")
permit(principal in Role::"lead", action in Action::"write", resource);

@id("lead-tenant")
forbid(principal in Role::"lead", action == Action::"delete_note", resource)
unless { principal.tenant == "acme" };

@id("no-viewer-irreversible")
forbid(principal in Role::"viewer", action in Action::"irreversible", resource);

@id("bot-only")
permit(principal == Agent::"bot-7", action == Action::"wipe", resource);
"""

TOOLS = {
    "get_order": "read",
    "issue_refund": "irreversible",
    "close_account": "irreversible",
    "add_note": "write",
    "delete_note": "write",
    "wipe": "irreversible",
}


@pytest.fixture
def bundle(write_bundle: WriteBundle) -> PolicyBundle:
    return PolicyBundle.load(write_bundle({"policies.cedar": POLICIES}))


def test_cells_of_each_kind(bundle: PolicyBundle) -> None:
    matrix = permission_matrix(bundle, TOOLS, roles=["agent", "lead", "viewer"])

    assert matrix.cell("agent", "get_order") == MatrixCell(
        CellKind.ALLOWED, policy_ids=("read-all",)
    )
    assert matrix.cell("agent", "close_account") == MatrixCell(
        CellKind.NEEDS_APPROVAL,
        approval_roles=("supervisor",),
        policy_ids=("close-with-approval",),
    )
    assert matrix.cell("agent", "issue_refund") == MatrixCell(
        CellKind.CONDITIONAL,
        approval_roles=("supervisor",),
        conditions=(
            "refund-small: permit when context.args.amount <= 100",
            "refund-large: permit with approval by supervisor when context.args.amount > 100",
            'no-undelivered: forbid when resource is Order && resource.status != "delivered"',
        ),
        policy_ids=("refund-small", "refund-large", "no-undelivered"),
    )
    assert matrix.cell("agent", "add_note") == MatrixCell(CellKind.DENIED)
    assert matrix.cell("viewer", "issue_refund") == MatrixCell(
        CellKind.DENIED, policy_ids=("no-viewer-irreversible",)
    )
    assert matrix.cell("lead", "add_note") == MatrixCell(CellKind.ALLOWED, policy_ids=("escalate",))


def test_conditions_on_the_principal_stay_conditional(bundle: PolicyBundle) -> None:
    matrix = permission_matrix(bundle, TOOLS, roles=["lead"])

    assert matrix.cell("lead", "delete_note") == MatrixCell(
        CellKind.CONDITIONAL,
        conditions=(
            "escalate: permit",
            'lead-tenant: forbid when principal.tenant != "acme"',
        ),
        policy_ids=("escalate", "lead-tenant"),
    )


def test_a_policy_for_one_agent_does_not_apply_to_a_role(bundle: PolicyBundle) -> None:
    matrix = permission_matrix(bundle, TOOLS, roles=["agent"])

    assert matrix.cell("agent", "wipe").kind is CellKind.DENIED


def test_defaults_are_the_roles_and_actions_the_policies_name(bundle: PolicyBundle) -> None:
    matrix = permission_matrix(bundle)

    assert matrix.roles == ("agent", "lead", "viewer")
    assert matrix.tools == ("close_account", "delete_note", "issue_refund", "wipe")
    assert matrix.effect_classes["wipe"] is None
    # Without an effect class, group policies such as the viewer's forbid do not apply.
    assert matrix.cell("viewer", "issue_refund").kind is CellKind.DENIED
    assert matrix.cell("viewer", "issue_refund").policy_ids == ()


def test_rows_and_json(bundle: PolicyBundle) -> None:
    matrix = permission_matrix(bundle, {"get_order": "read", "add_note": "write"}, ["agent"])

    assert list(matrix.rows()) == [
        (
            "agent",
            (MatrixCell(CellKind.ALLOWED, policy_ids=("read-all",)), MatrixCell(CellKind.DENIED)),
        ),
    ]
    assert matrix.to_json() == {
        "bundle_version": str(bundle.version),
        "roles": ["agent"],
        "tools": [
            {"name": "get_order", "effect_class": "read"},
            {"name": "add_note", "effect_class": "write"},
        ],
        "cells": {
            "agent": {
                "get_order": {
                    "kind": "allowed",
                    "approval_roles": [],
                    "conditions": [],
                    "policy_ids": ["read-all"],
                    "errors": [],
                },
                "add_note": {
                    "kind": "denied",
                    "approval_roles": [],
                    "conditions": [],
                    "policy_ids": [],
                    "errors": [],
                },
            }
        },
    }


def test_a_policy_that_always_fails_denies_the_cell(write_bundle: WriteBundle) -> None:
    path = write_bundle(
        {
            "p.cedar": """
            @id("open") permit(principal, action, resource);
            @id("broken") forbid(principal in Role::"ops", action, resource)
            when { decimal("1.23456") == decimal("1.0") };
            """
        }
    )
    matrix = permission_matrix(PolicyBundle.load(path), {"restart": "write"}, ["ops", "dev"])

    cell = matrix.cell("ops", "restart")
    assert cell.kind is CellKind.DENIED
    assert cell.policy_ids == ("broken",)
    assert "too many digits" in cell.errors[0]
    assert matrix.cell("dev", "restart").kind is CellKind.ALLOWED


def test_an_unknown_effect_class_is_refused(bundle: PolicyBundle) -> None:
    with pytest.raises(ValueError, match="effect_class: `reads` is not one of"):
        permission_matrix(bundle, {"get_order": "reads"})
