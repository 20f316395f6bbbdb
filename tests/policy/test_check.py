"""check_bundle: every problem, with its file and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from proctor.errors import PolicyIssue
from proctor.policy import check_bundle

from .helpers import SUPPORT, WriteBundle

GOOD = """\
// First policy: fine.
@id("first")
permit(principal, action in Action::"read", resource);

"""


def one_issue(write_bundle: WriteBundle, files: dict[str, str]) -> PolicyIssue:
    issues = check_bundle(write_bundle(files))
    assert len(issues) == 1, issues
    return issues[0]


def test_the_support_bundle_checks_clean() -> None:
    assert check_bundle(SUPPORT) == []


@pytest.mark.parametrize(
    ("second", "line", "message"),
    [
        # A missing operand: the `}` on the condition's line is unexpected.
        (
            '@id("second")\npermit(principal, action, resource)\nwhen { context.a == };\n',
            7,
            "syntax error: unexpected token `}`",
        ),
        # A missing comma in the scope, on the policy's second line.
        (
            '@id("second")\npermit(principal,\n  action\n  resource);\n',
            8,
            "syntax error: unexpected token `resource`",
        ),
        # An unclosed string, three lines into the policy.
        (
            'permit(principal, action, resource)\nwhen {\n  context.a == "oops\n};\n',
            7,
            "syntax error: invalid token",
        ),
        # A typo in the effect, reported where it is written.
        ("\n\npermitt(principal, action, resource);\n", 7, "invalid policy effect: permitt"),
        # An unknown method, found on its line.
        (
            "permit(principal, action, resource)\nwhen {\n  true &&\n  context.a.foo()\n};\n",
            8,
            "`foo` is not a valid method",
        ),
        # A missing `;` at the end of the file.
        (
            "permit(principal, action, resource)\nwhen { true }\n",
            6,
            "the policy has no closing `;`",
        ),
        # A missing `;` between two policies: the second `permit` is unexpected.
        (
            "permit(principal, action, resource)\n\npermit(principal, action, resource);\n",
            7,
            "syntax error: unexpected token `(` (is a `;` missing before this line?)",
        ),
    ],
)
def test_syntax_error_in_the_second_policy_reports_its_line(
    write_bundle: WriteBundle, second: str, line: int, message: str
) -> None:
    issue = one_issue(write_bundle, {"policies/p.cedar": GOOD + second})

    assert issue.file.endswith("policies/p.cedar")
    assert issue.line == line
    assert message in issue.message


def test_every_broken_policy_is_reported(write_bundle: WriteBundle) -> None:
    text = (
        "permit(principal, action resource);\n"  # line 1
        + GOOD  # lines 2-5
        + "forbid(principal, action, resource) when { 1 + };\n"  # line 6
        + '@id("x") @id("y") permit(principal, action, resource);\n'  # line 7
    )
    issues = check_bundle(write_bundle({"p.cedar": text}))

    assert [(i.line, i.message) for i in issues] == [
        (1, "syntax error: unexpected token `resource`"),
        (6, "syntax error: unexpected token `}`"),
        (7, "syntax error: duplicate annotation: @id"),
    ]


def test_semicolons_in_strings_and_comments_do_not_split(write_bundle: WriteBundle) -> None:
    text = (
        "// a comment; with a semicolon\n"
        'permit(principal, action, resource) when { context.a == "x;y" };\n'
        'forbid(principal, action, resource) when { context.a == "\\";" };\n'
    )
    assert check_bundle(write_bundle({"p.cedar": text})) == []


def test_duplicate_ids_name_both_places(write_bundle: WriteBundle) -> None:
    issue = one_issue(
        write_bundle,
        {
            "a.cedar": '@id("same")\npermit(principal, action, resource);\n',
            "b.cedar": '\n@id("same")\nforbid(principal, action, resource);\n',
        },
    )

    assert issue.file.endswith("b.cedar")
    assert issue.line == 2
    assert issue.message.startswith("duplicate policy id `same`, already used at a.cedar:1")


def test_approval_on_a_forbid(write_bundle: WriteBundle) -> None:
    issue = one_issue(
        write_bundle,
        {"p.cedar": GOOD + '@approval("boss")\nforbid(principal, action, resource);\n'},
    )

    assert issue.line == 5
    assert issue.message.startswith("@approval is only for permit policies")


@pytest.mark.parametrize("annotation", ['@approval("")', "@approval", '@approval(" boss")'])
def test_approval_needs_a_role(write_bundle: WriteBundle, annotation: str) -> None:
    issue = one_issue(
        write_bundle, {"p.cedar": f"{annotation}\npermit(principal, action, resource);\n"}
    )

    assert issue.line == 1
    assert "needs a role name" in issue.message


def test_empty_id(write_bundle: WriteBundle) -> None:
    issue = one_issue(write_bundle, {"p.cedar": '@id("")\npermit(principal, action, resource);\n'})

    assert issue.line == 1
    assert issue.message.startswith("@id is empty")


def test_templates_are_refused(write_bundle: WriteBundle) -> None:
    issue = one_issue(
        write_bundle, {"p.cedar": GOOD + "permit(principal == ?principal, action, resource);\n"}
    )

    assert issue.line == 5
    assert "templates" in issue.message


def test_no_policies(write_bundle: WriteBundle) -> None:
    path = write_bundle({"p.cedar": "// nothing here\n"})

    (issue,) = check_bundle(path)

    assert issue.file == str(path)
    assert issue.message.startswith("no policies")


@pytest.mark.parametrize("make", ["missing", "file"])
def test_missing_folder(tmp_path: Path, make: str) -> None:
    path = tmp_path / "bundle"
    if make == "file":
        path.write_text("not a folder")

    (issue,) = check_bundle(path)

    assert issue.file == str(path)
    assert issue.line is None
    assert issue.message.startswith("policy bundle folder ")


def test_non_utf8_file(write_bundle: WriteBundle) -> None:
    path = write_bundle({"p.cedar": GOOD})
    (path / "bad.cedar").write_bytes(b"// ok\n// \xff\n")

    (issue,) = check_bundle(path)

    assert issue.file.endswith("bad.cedar")
    assert issue.line == 2
    assert "UTF-8" in issue.message


class TestSchema:
    def bundle(self, tmp_path: Path) -> Path:
        return Path(shutil.copytree(SUPPORT, tmp_path / "support"))

    def test_validation_error_is_located_at_the_policy(self, tmp_path: Path) -> None:
        root = self.bundle(tmp_path)
        with (root / "policies" / "reads.cedar").open("a") as file:
            file.write(
                '\n@id("typo")\npermit(principal, action == Action::"get_order", resource is Order)'
                '\nwhen { resource.stauts == "delivered" };\n'
            )

        (issue,) = check_bundle(root)

        assert issue.file == str(root / "policies" / "reads.cedar")
        assert issue.line == 7  # the line of the misspelt name, not of the policy's start
        assert issue.message == (
            "policy `typo` does not match the schema: unknown attribute `stauts` of `Order`"
        )

    def test_validation_errors_in_several_files(self, tmp_path: Path) -> None:
        root = self.bundle(tmp_path)
        (root / "policies" / "z.cedar").write_text(
            '\n\npermit(principal, action == Action::"nope", resource);\n'
        )
        with (root / "policies" / "reads.cedar").open("a") as file:
            file.write("permit(principal, action in Action::\"read\", resource)\n"
                       "when { context.run.mode == 3 };\n")  # fmt: skip

        issues = check_bundle(root)

        assert [(Path(i.file).name, i.line) for i in issues] == [
            ("reads.cedar", 4),
            ("z.cedar", 3),  # once: that no action applies follows from the unknown one
        ]
        assert "are not compatible" in issues[0].message
        assert "policy `policies/z.cedar:3`" in issues[1].message
        assert "unknown tool `nope`" in issues[1].message

    def test_schema_syntax_error_has_its_line(self, tmp_path: Path) -> None:
        root = self.bundle(tmp_path)
        text = (root / "schema.cedarschema").read_text()
        (root / "schema.cedarschema").write_text(text.replace("entity Tool;", "entity Tool"))

        (issue,) = check_bundle(root)

        assert issue.file == str(root / "schema.cedarschema")
        assert issue.line == 6
        assert issue.message == "invalid schema: error parsing schema: unexpected token `type`"

    def test_schema_unknown_type_is_found_by_name(self, tmp_path: Path) -> None:
        root = self.bundle(tmp_path)
        text = (root / "schema.cedarschema").read_text()
        (root / "schema.cedarschema").write_text(text.replace("calls?: Long", "calls?: Lon"))

        (issue,) = check_bundle(root)

        assert issue.line == 6
        assert issue.message == "invalid schema: failed to resolve type: Lon"

    def test_json_schema(self, write_bundle: WriteBundle) -> None:
        path = write_bundle({"p.cedar": GOOD})
        (path / "schema.cedarschema.json").write_text(
            '{"": {\n  "entityTypes": {"A": {"shape": 3}},\n  "actions": {}\n}}\n'
        )

        (issue,) = check_bundle(path)

        assert issue.file.endswith("schema.cedarschema.json")
        assert issue.line == 2
        assert issue.message.startswith("invalid schema: ")

    def test_json_schema_syntax(self, write_bundle: WriteBundle) -> None:
        path = write_bundle({"p.cedar": GOOD})
        (path / "schema.cedarschema.json").write_text('{\n  "": {\n    "entityTypes": {,\n')

        (issue,) = check_bundle(path)

        assert issue.line == 3

    def test_valid_json_schema(self, write_bundle: WriteBundle) -> None:
        path = write_bundle({"p.cedar": GOOD})
        (path / "schema.cedarschema.json").write_text(
            '{"": {"entityTypes": {"Agent": {}}, "actions": {"read": {}, "get_order": '
            '{"memberOf": [{"id": "read"}], "appliesTo": {"principalTypes": ["Agent"], '
            '"resourceTypes": ["Agent"]}}}}}'
        )

        assert check_bundle(path) == []

    def test_two_schemas(self, tmp_path: Path) -> None:
        root = self.bundle(tmp_path)
        (root / "schema.cedarschema.json").write_text("{}")

        (issue,) = check_bundle(root)

        assert "one schema" in issue.message
