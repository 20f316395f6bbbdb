"""``proctor policy schema`` and ``proctor policy check --app``: the schema written from an
app's tools catches the misspellings Cedar alone lets through, each at its file and line;
``proctor policy matrix`` without ``--app`` says what it cannot see."""

from __future__ import annotations

import shutil
from pathlib import Path

import cedarpy

from proctor.examples.support import BUNDLE

from .conftest import Cli

APP = "proctor.examples.support:app"

TYPOS = """\
// Each of these loads, and without a schema passes `proctor policy check`.
@id("typo-tool")
permit (
  principal in Role::"support_agent",
  action == Action::"sendemail",
  resource
);

@id("typo-role")
permit (
  principal in Role::"helpdsk",
  action == Action::"lookup_order",
  resource
);

@id("typo-argument")
forbid (principal, action == Action::"issue_refund", resource)
when {
  context.args.amout > decimal("500.00")
};

@id("typo-attribute")
forbid (principal, action == Action::"issue_refund", resource)
when {
  resource.remainig.lessThan(context.args.amount)
};

@id("integer-decimal")
forbid (principal, action == Action::"issue_refund", resource)
when {
  context.args.amount.greaterThan(decimal("100"))
};
"""


def bundle_with_typos(tmp_path: Path) -> Path:
    bundle = tmp_path / "bundle"
    shutil.copytree(BUNDLE, bundle)
    (bundle / "schema.cedarschema").unlink()  # as a new bundle has none
    (bundle / "typos.cedar").write_text(TYPOS)
    return bundle


def test_without_a_schema_the_typos_pass(cli: Cli, tmp_path: Path) -> None:
    result = cli("policy", "check", str(bundle_with_typos(tmp_path)))
    assert result.exit_code == 0, result.output


def test_check_with_the_app_names_each_typo_at_its_line(cli: Cli, tmp_path: Path) -> None:
    bundle = bundle_with_typos(tmp_path)
    result = cli("policy", "check", str(bundle), "--app", APP)
    assert result.exit_code == 1
    typos = bundle / "typos.cedar"
    found = [line for line in result.stderr.splitlines() if line.startswith(str(typos))]
    expected = [
        (5, "typo-tool", "unknown tool `sendemail`"),
        (11, "typo-role", "unknown role `helpdsk`"),
        (19, "typo-argument", "unknown argument `amout` of tool `issue_refund`"),
        (25, "typo-attribute", "unknown attribute `remainig` of `Order`"),
        (31, "integer-decimal", 'decimal("100") is not a decimal'),
    ]
    assert len(found) == len(expected), result.stderr
    for line, (number, policy, message) in zip(found, expected, strict=True):
        assert line.startswith(f"{typos}:{number}: policy `{policy}`"), line
        assert message in line, line
    assert "5 problem(s)" in result.stderr


def test_the_bundled_policies_match_the_schema_of_their_tools(cli: Cli) -> None:
    result = cli("policy", "check", str(BUNDLE), "--app", APP)
    assert result.exit_code == 0, result.output


def test_schema_declares_tools_arguments_resources_context_and_roles(
    cli: Cli, tmp_path: Path
) -> None:
    result = cli("policy", "schema", "--app", APP)
    assert result.exit_code == 0, result.output
    text = result.stdout
    schema = cedarpy.Schema.from_str(text)  # Cedar reads it
    assert schema is not None
    assert 'entity Role enum ["support_agent"];' in text
    assert 'entity Order { "status": String, "total": decimal' in text
    assert '"customer"?: String' in text  # a Recipient not on file has no customer
    assert 'action "issue_refund" in ["irreversible"] appliesTo {' in text
    assert 'args: { "order_id": String, "amount": decimal, "reason": String }' in text
    assert '"reason": String, "customer_id"?: String' in text  # escalate's optional argument
    assert '"issue_refund": { "amount": decimal }' in text  # run totals of numeric arguments
    out = tmp_path / "schema.cedarschema"
    assert cli("policy", "schema", "--app", APP, "--out", str(out)).exit_code == 0
    assert out.read_text() == text


def test_the_matrix_without_the_app_says_what_it_cannot_see(cli: Cli) -> None:
    result = cli("policy", "matrix", str(BUNDLE))
    assert result.exit_code == 0, result.output
    assert "without --app, the matrix shows only the tools the policies name" in result.stderr
    assert "lookup_order" not in result.stdout  # a read tool, covered by its effect class
    with_app = cli("policy", "matrix", str(BUNDLE), "--app", APP)
    assert "lookup_order" in with_app.stdout
    assert "without --app" not in with_app.stderr
