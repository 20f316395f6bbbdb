"""``proctor policy check|matrix`` on the demo bundle and on a broken one."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import DEMO_BUNDLE, Cli

BROKEN = """\
@id("reads")
permit(principal in Role::"agent", action in Action::"read", resource);

@id("refund-small")
permit(principal in Role::"agent", action == Action::"refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("100.00") };
"""


def broken_bundle(tmp_path: Path) -> Path:
    bundle = tmp_path / "broken"
    bundle.mkdir()
    (bundle / "proctor.yaml").write_text("label: broken\n")
    (bundle / "policy.cedar").write_text(BROKEN)
    return bundle


def test_check_reports_a_syntax_error_with_file_and_line(cli: Cli, tmp_path: Path) -> None:
    bundle = broken_bundle(tmp_path)
    result = cli("policy", "check", str(bundle))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"{bundle}/policy.cedar:6: syntax error: unexpected token `}}`\n1 problem(s) in {bundle}.\n"
    )


def test_check_reports_a_missing_folder(cli: Cli, tmp_path: Path) -> None:
    result = cli("policy", "check", str(tmp_path / "nowhere"))
    assert result.exit_code == 1
    assert f"{tmp_path / 'nowhere'}: policy bundle folder does not exist" in result.stderr


def test_check_accepts_the_demo_bundle(cli: Cli) -> None:
    result = cli("policy", "check", str(DEMO_BUNDLE))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"OK: {DEMO_BUNDLE} — 4 policies, version kernel-demo@")


def test_matrix_of_a_broken_bundle_is_a_config_error(cli: Cli, tmp_path: Path) -> None:
    bundle = broken_bundle(tmp_path)
    result = cli("policy", "matrix", str(bundle))
    assert result.exit_code == 2
    assert f"{bundle}/policy.cedar:6: syntax error" in result.stderr
    assert f"run `proctor policy check {bundle}`" in result.stderr


def test_matrix_shows_roles_and_the_tools_the_policies_name(cli: Cli) -> None:
    result = cli("policy", "matrix", str(DEMO_BUNDLE))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Permission matrix — kernel-demo@" in out
    header = next(line for line in out.splitlines() if "role \\ tool" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == ["role \\ tool", "issue_refund"]
    row = next(line for line in out.splitlines() if "support_agent" in line)
    assert "conditional" in row
    assert "refund-needs-supervisor: permit with approval by supervisor when" in out


def test_matrix_with_the_app_knows_every_tool_and_its_effect_class(cli: Cli) -> None:
    result = cli("policy", "matrix", str(DEMO_BUNDLE), "--app", "tests.cli.shop:app", "--json")
    assert result.exit_code == 0, result.output
    matrix = json.loads(result.stdout)
    assert matrix["roles"] == ["support_agent"]
    assert matrix["tools"] == [
        {"name": "lookup_order", "effect_class": "read"},
        {"name": "issue_refund", "effect_class": "irreversible"},
    ]
    cells = matrix["cells"]["support_agent"]
    assert cells["lookup_order"] == {
        "kind": "allowed",
        "approval_roles": [],
        "conditions": [],
        "policy_ids": ["support-reads"],
        "errors": [],
    }
    assert cells["issue_refund"]["kind"] == "conditional"
    assert cells["issue_refund"]["approval_roles"] == ["supervisor"]


def test_matrix_json_parses(cli: Cli) -> None:
    result = cli("policy", "matrix", str(DEMO_BUNDLE), "--json")
    assert result.exit_code == 0, result.output
    matrix = json.loads(result.stdout)
    assert matrix["bundle_version"].startswith("kernel-demo@")
    assert matrix["roles"] == ["support_agent"]
    assert matrix["tools"] == [{"name": "issue_refund", "effect_class": None}]
    assert matrix["cells"]["support_agent"]["issue_refund"]["policy_ids"] == [
        "refund-small",
        "refund-needs-supervisor",
        "refund-within-total",
    ]


def test_check_warns_about_tools_that_do_not_declare_trust(cli: Cli) -> None:
    from .conftest import DEMO_BUNDLE, SHOP_APP

    result = cli("policy", "check", str(DEMO_BUNDLE), "--app", SHOP_APP)
    assert result.exit_code == 0, result.output
    assert "warning: tool lookup_order does not declare trust" in result.stderr
    declared = cli("policy", "check", str(DEMO_BUNDLE), "--app", "proctor.examples.support:app")
    assert "does not declare trust" not in declared.stderr
