"""The public surface of proctor.policy: what others code against."""

from __future__ import annotations

import proctor.policy


def test_exports_are_exactly_the_public_api() -> None:
    assert sorted(proctor.policy.__all__) == [
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
    for name in proctor.policy.__all__:
        assert getattr(proctor.policy, name).__module__.startswith("proctor.policy.")
