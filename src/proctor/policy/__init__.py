"""Policy: versioned Cedar bundles that decide whether a proposed tool call may run.

    bundle = PolicyBundle.load("policies/refunds")
    decision = bundle.decide(PolicyRequest(...))
    if decision.effect is DecisionEffect.REQUIRE_APPROVAL:
        ...  # any one of decision.approval_roles may approve

``check_bundle`` lists a bundle's problems with file and line;
``permission_matrix`` shows what each role may do with each tool.
"""

from proctor.policy.bundle import BundleVersion, PolicyBundle, bundle_digest
from proctor.policy.check import check_bundle
from proctor.policy.decision import (
    Decision,
    DecisionEffect,
    PolicyRequest,
    Principal,
    ResourceRef,
    ResourceType,
    declare_resource,
    declared_resource,
)
from proctor.policy.matrix import CellKind, MatrixCell, PermissionMatrix, permission_matrix
from proctor.policy.policies import PolicyInfo
from proctor.policy.settings import ApprovalSettings, BundleSettings, RunBudgetSettings

__all__ = [
    "ApprovalSettings",
    "BundleSettings",
    "BundleVersion",
    "CellKind",
    "Decision",
    "DecisionEffect",
    "MatrixCell",
    "PermissionMatrix",
    "PolicyBundle",
    "PolicyInfo",
    "PolicyRequest",
    "Principal",
    "ResourceRef",
    "ResourceType",
    "RunBudgetSettings",
    "bundle_digest",
    "check_bundle",
    "declare_resource",
    "declared_resource",
    "permission_matrix",
]
