"""The policies of a bundle, read from ``.cedar`` files with their ids and lines.

A policy's id is its ``@id("...")`` annotation, or ``<file>:<line>`` of its
first line. ``@approval("role")`` on a permit means that permit allows a call
only with the approval of someone holding ``role``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import cedarpy

from proctor.errors import PolicyIssue
from proctor.policy._source import END_OF_INPUT, Statement, locate_error, split_statements

ID_ANNOTATION = "id"
APPROVAL_ANNOTATION = "approval"


@dataclass(frozen=True)
class PolicyInfo:
    """One policy of a bundle."""

    id: str
    """``@id("...")``, or ``<file>:<line>`` when the policy has none."""
    file: str
    """The file it is written in, relative to the bundle folder."""
    line: int
    """The 1-based line where it starts (its first annotation, or ``permit``/``forbid``)."""
    effect: Literal["permit", "forbid"]
    approval_role: str | None
    """The role named by ``@approval("role")``; ``None`` for plain permits and forbids."""
    text: str
    """The policy's source text, annotations included."""

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ParsedPolicy:
    """A policy and its Cedar JSON form (EST), ready to go into a policy set."""

    info: PolicyInfo
    est: dict[str, Any]


def read_policies(
    relative: str, text: str, shown: str
) -> tuple[list[ParsedPolicy], list[PolicyIssue]]:
    """Parse one ``.cedar`` file; ``relative`` names it in ids, ``shown`` in issues."""
    parsed: list[ParsedPolicy] = []
    issues: list[PolicyIssue] = []
    for statement in split_statements(text):
        try:
            document = json.loads(cedarpy.policies_to_json_str(statement.text))
        except ValueError as exc:
            issues.append(_parse_issue(statement, str(exc), shown))
            continue
        if document.get("templates"):
            issues.append(
                PolicyIssue(
                    shown,
                    statement.line,
                    "templates (`?principal` / `?resource` slots) cannot be used in a bundle; "
                    "write a static policy",
                )
            )
            continue
        for est in document.get("staticPolicies", {}).values():
            policy, problems = _policy(relative, statement, est, shown)
            issues.extend(problems)
            if policy is not None:
                parsed.append(policy)
    return parsed, issues


def _policy(
    relative: str, statement: Statement, est: dict[str, Any], shown: str
) -> tuple[ParsedPolicy | None, list[PolicyIssue]]:
    annotations: dict[str, str | None] = est.get("annotations", {})
    effect: Literal["permit", "forbid"] = "forbid" if est["effect"] == "forbid" else "permit"
    issues: list[PolicyIssue] = []

    policy_id = annotations.get(ID_ANNOTATION, f"{relative}:{statement.line}")
    if not policy_id:
        issues.append(
            PolicyIssue(shown, statement.line, '@id is empty; give the policy a name: @id("...")')
        )

    approval_role: str | None = None
    if APPROVAL_ANNOTATION in annotations:
        approval_role = annotations[APPROVAL_ANNOTATION] or ""
        if effect == "forbid":
            issues.append(
                PolicyIssue(
                    shown,
                    statement.line,
                    "@approval is only for permit policies: a forbid always denies; "
                    "remove @approval or make the policy a permit",
                )
            )
        elif not approval_role or approval_role != approval_role.strip():
            issues.append(
                PolicyIssue(
                    shown,
                    statement.line,
                    f"@approval({approval_role!r}) needs a role name without surrounding "
                    'spaces, e.g. @approval("supervisor")',
                )
            )
    if issues or policy_id is None:
        return None, issues
    info = PolicyInfo(
        id=policy_id,
        file=relative,
        line=statement.line,
        effect=effect,
        approval_role=approval_role,
        text=statement.text,
    )
    return ParsedPolicy(info, est), []


def _parse_issue(statement: Statement, error: str, shown: str) -> PolicyIssue:
    offset = locate_error(statement.text, statement.masked, error, _parse_error)
    line = statement.line if offset is None else statement.line + offset - 1
    message = error
    if not statement.terminated and END_OF_INPUT in error:
        message = f"{error}: the policy has no closing `;`"
    elif (
        error.startswith("unexpected token")
        and offset is not None
        and offset > 1
        and _starts_policy(statement.masked, offset)
    ):
        message = f"{error} (is a `;` missing before this line?)"
    return PolicyIssue(shown, line, f"syntax error: {message}")


def _starts_policy(masked: str, line: int) -> bool:
    """True when ``line`` (1-based, in the statement) opens a new policy."""
    text = masked.split("\n")[line - 1].lstrip()
    return text.startswith(("permit", "forbid", "@"))


def _parse_error(text: str) -> str | None:
    try:
        cedarpy.PolicySet.from_str(text)
    except ValueError as exc:
        return str(exc)
    return None
