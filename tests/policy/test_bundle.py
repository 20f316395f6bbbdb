"""Loading a bundle: its version, its files and its proctor.yaml settings."""

from __future__ import annotations

import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from proctor.errors import PolicyError, PolicyIssue
from proctor.policy import (
    ApprovalSettings,
    BundleSettings,
    BundleVersion,
    PolicyBundle,
    check_bundle,
)

from .helpers import SUPPORT, WriteBundle

POLICY = 'permit(principal, action in Action::"read", resource);\n'


def copy_support(tmp_path: Path) -> Path:
    return Path(shutil.copytree(SUPPORT, tmp_path / "support"))


def test_settings_come_from_proctor_yaml(support: PolicyBundle) -> None:
    settings = support.settings

    assert settings.label == "support-test"
    assert settings.approvals == ApprovalSettings(ttl_s=3600)
    assert settings.budgets.run.tool_calls == 20
    assert settings.budgets.run.usd == Decimal("2.50")


def test_settings_defaults(write_bundle: WriteBundle) -> None:
    settings = PolicyBundle.load(write_bundle({"p.cedar": POLICY})).settings

    assert settings == BundleSettings(label="test")
    assert settings.approvals.ttl_s == 86400
    assert settings.budgets.run.tool_calls is None


def test_version_is_label_and_digest(support: PolicyBundle) -> None:
    version = support.version

    assert version.label == "support-test"
    assert len(version.digest) == 64
    assert str(version) == f"support-test@{version.digest[:12]}"


def test_version_digest_is_documented_hash_of_the_files(support: PolicyBundle) -> None:
    digest = hashlib.sha256()
    for relative in sorted(support.files):
        content = (SUPPORT / relative).read_bytes()
        digest.update(f"{relative}\0{len(content)}\0".encode())
        digest.update(content)

    assert set(support.files) == {
        "policies/reads.cedar",
        "policies/refunds.cedar",
        "proctor.yaml",
        "schema.cedarschema",
    }
    assert support.version.digest == digest.hexdigest()


def test_version_is_stable_across_loads_and_copies(tmp_path: Path, support: PolicyBundle) -> None:
    again = PolicyBundle.load(SUPPORT)
    copied = PolicyBundle.load(copy_support(tmp_path))

    assert again.version == support.version
    assert copied.version == support.version


@pytest.mark.parametrize(
    ("relative", "change"),
    [
        ("policies/reads.cedar", "\n// a comment changes the version too\n"),
        ("proctor.yaml", "# even a comment\n"),
        ("schema.cedarschema", "\n"),
    ],
)
def test_version_changes_when_any_file_changes(
    tmp_path: Path, support: PolicyBundle, relative: str, change: str
) -> None:
    root = copy_support(tmp_path)
    with (root / relative).open("a") as file:
        file.write(change)

    assert PolicyBundle.load(root).version.digest != support.version.digest


def test_version_changes_when_a_file_is_added_or_renamed(
    tmp_path: Path, support: PolicyBundle
) -> None:
    root = copy_support(tmp_path)
    (root / "policies" / "more.cedar").write_text("// nothing yet\n")
    added = PolicyBundle.load(root).version
    (root / "policies" / "more.cedar").rename(root / "policies" / "other.cedar")
    renamed = PolicyBundle.load(root).version

    assert len({support.version.digest, added.digest, renamed.digest}) == 3


def test_label_is_part_of_the_version(write_bundle: WriteBundle) -> None:
    one = PolicyBundle.load(write_bundle({"p.cedar": POLICY}, label="one", name="one"))
    two = PolicyBundle.load(write_bundle({"p.cedar": POLICY}, label="two", name="two"))

    assert str(one.version).startswith("one@")
    assert str(two.version).startswith("two@")
    assert one.version.digest != two.version.digest  # proctor.yaml differs


def test_files_other_than_the_bundle_are_ignored(tmp_path: Path, support: PolicyBundle) -> None:
    root = copy_support(tmp_path)
    (root / "README.md").write_text("notes\n")
    (root / ".git").mkdir()
    (root / ".git" / "x.cedar").write_text("garbage")

    assert PolicyBundle.load(root).version == support.version


def test_bundle_version_str() -> None:
    assert str(BundleVersion(label="x", digest="ab" * 32)) == "x@abababababab"


def test_load_raises_with_every_issue(write_bundle: WriteBundle) -> None:
    path = write_bundle({"a.cedar": "permit(principal, action, resource)\n"}, label=None)

    with pytest.raises(PolicyError) as raised:
        PolicyBundle.load(path)

    error = raised.value
    assert error.bundle == str(path)
    assert [issue.file for issue in error.issues] == [
        str(path / "proctor.yaml"),
        str(path / "a.cedar"),
    ]
    assert f"proctor policy check {path}" in str(error)


class TestProctorYaml:
    def issues(self, write_bundle: WriteBundle, yaml_text: str) -> list[PolicyIssue]:
        path = write_bundle({"p.cedar": POLICY}, label=None)
        (path / "proctor.yaml").write_text(yaml_text)
        return check_bundle(path)

    def test_unknown_field_names_the_field_line_and_allowed_fields(
        self, write_bundle: WriteBundle
    ) -> None:
        issues = self.issues(write_bundle, "label: x\napprovals:\n  ttl_s: 10\n  tll: 5\n")

        assert len(issues) == 1
        assert issues[0].file.endswith("proctor.yaml")
        assert issues[0].line == 4
        assert issues[0].message == (
            "unknown field `approvals.tll`; the fields allowed here are: ttl_s"
        )

    def test_unknown_top_level_field(self, write_bundle: WriteBundle) -> None:
        (issue,) = self.issues(write_bundle, "label: x\n\nbudget:\n  run: {}\n")

        assert issue.line == 3
        assert issue.message.startswith("unknown field `budget`; the fields allowed here are: ")
        assert "budgets" in issue.message

    def test_missing_label(self, write_bundle: WriteBundle) -> None:
        (issue,) = self.issues(write_bundle, "description: no label\n")

        assert (issue.line, issue.message) == (1, "`label` is required")

    def test_invalid_value_points_at_its_line(self, write_bundle: WriteBundle) -> None:
        (issue,) = self.issues(write_bundle, "label: x\napprovals:\n  ttl_s: 0\n")

        assert issue.line == 3
        assert issue.message == "`approvals.ttl_s`: Input should be greater than 0"

    def test_nested_budget_caps_are_checked(self, write_bundle: WriteBundle) -> None:
        (issue,) = self.issues(write_bundle, "label: x\nbudgets:\n  run:\n    tokens: 5\n")

        assert issue.line == 4
        assert issue.message.startswith("unknown field `budgets.run.tokens`")
        assert "model_tokens" in issue.message

    def test_bad_yaml_reports_its_line(self, write_bundle: WriteBundle) -> None:
        (issue,) = self.issues(write_bundle, "label: x\napprovals:\n  ttl_s: [1, 2\n")

        assert issue.file.endswith("proctor.yaml")
        assert issue.line == 4
        assert issue.message.startswith("invalid YAML: ")

    def test_not_a_mapping(self, write_bundle: WriteBundle) -> None:
        (issue,) = self.issues(write_bundle, "- label: x\n")

        assert issue.line == 1
        assert "must be a mapping" in issue.message

    def test_empty_file_needs_a_label(self, write_bundle: WriteBundle) -> None:
        (issue,) = self.issues(write_bundle, "")

        assert (issue.line, issue.message) == (None, "`label` is required")

    def test_duplicate_key(self, write_bundle: WriteBundle) -> None:
        (issue,) = self.issues(write_bundle, "label: x\nlabel: y\n")

        assert (issue.line, issue.message) == (2, "`label` is set twice")

    def test_missing_file(self, write_bundle: WriteBundle) -> None:
        path = write_bundle({"p.cedar": POLICY}, label=None)

        (issue,) = check_bundle(path)

        assert issue.file == str(path / "proctor.yaml")
        assert issue.line is None
        assert issue.message.startswith("is missing")
