"""Reading a bundle folder and finding every problem in it, each with its file and line.

A bundle folder holds ``*.cedar`` policy files (found recursively), an
optional Cedar schema (``schema.cedarschema`` or ``schema.cedarschema.json``)
and a required ``proctor.yaml``. ``check_bundle`` reports what is wrong without
raising; ``PolicyBundle.load`` raises ``PolicyError`` with the same issues.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import cedarpy

from proctor.errors import PolicyIssue
from proctor.policy._source import (
    END_OF_INPUT,
    find_token_line,
    locate_error,
    mask,
)
from proctor.policy.policies import ParsedPolicy, read_policies
from proctor.policy.settings import SETTINGS_FILE, BundleSettings, parse_settings

SCHEMA_FILE = "schema.cedarschema"
SCHEMA_JSON_FILE = "schema.cedarschema.json"
POLICY_SUFFIX = ".cedar"
_JSON_LINE = re.compile(r"at line (\d+) column \d+")
_SCHEMA_SYNTAX = "error parsing schema:"
_ROOT_FILES = (SETTINGS_FILE, SCHEMA_FILE, SCHEMA_JSON_FILE)


@dataclass
class BundleSource:
    """What a bundle folder holds, as far as it could be read, and what is wrong with it."""

    path: Path
    files: dict[str, bytes] = field(default_factory=dict)
    settings: BundleSettings | None = None
    policies: list[ParsedPolicy] = field(default_factory=list)
    schema: cedarpy.Schema | None = None
    issues: list[PolicyIssue] = field(default_factory=list)

    def shown(self, relative: str) -> str:
        """How issues name a file: the bundle path joined with the file's relative path."""
        return str(self.path / relative)


def check_bundle(path: Path | str) -> list[PolicyIssue]:
    """Every problem in the bundle at ``path``; empty when it loads.

    Never raises for problems in the bundle's content: a missing folder, a
    syntax error, an invalid ``proctor.yaml`` are all issues.
    """
    return read_bundle(path).issues


def read_bundle(path: Path | str) -> BundleSource:
    """Read and check the bundle folder at ``path``."""
    source = BundleSource(Path(path))
    if not source.path.is_dir():
        what = "is not a folder" if source.path.exists() else "does not exist"
        source.issues.append(PolicyIssue(str(source.path), None, f"policy bundle folder {what}"))
        return source
    texts = _read_files(source)
    _read_settings(source, texts)
    for relative, text in texts.items():
        if relative.endswith(POLICY_SUFFIX):
            parsed, issues = read_policies(relative, text, source.shown(relative))
            source.policies.extend(parsed)
            source.issues.extend(issues)
    if not source.policies and not source.issues:
        source.issues.append(
            PolicyIssue(
                str(source.path), None, "no policies: add a .cedar file; without one, all is denied"
            )
        )
    _check_duplicate_ids(source)
    _read_schema(source, texts)
    return source


def _read_files(source: BundleSource) -> dict[str, str]:
    """The bundle's files by relative path (sorted), as text; fills ``source.files``."""
    root_files = [source.path / name for name in _ROOT_FILES if (source.path / name).is_file()]
    policy_files = [
        file
        for file in source.path.rglob(f"*{POLICY_SUFFIX}")
        if file.is_file()
        and not any(part.startswith(".") for part in file.relative_to(source.path).parts)
    ]
    candidates = root_files + policy_files
    texts: dict[str, str] = {}
    for file in sorted(candidates, key=lambda f: f.relative_to(source.path).as_posix()):
        relative = file.relative_to(source.path).as_posix()
        content = file.read_bytes()
        source.files[relative] = content
        try:
            texts[relative] = content.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = content.count(b"\n", 0, exc.start) + 1
            source.issues.append(
                PolicyIssue(source.shown(relative), line, "is not UTF-8 text; save it as UTF-8")
            )
    return texts


def _read_settings(source: BundleSource, texts: dict[str, str]) -> None:
    shown = source.shown(SETTINGS_FILE)
    if SETTINGS_FILE not in source.files:
        source.issues.append(
            PolicyIssue(shown, None, "is missing; every bundle needs one, at least `label: <name>`")
        )
        return
    if SETTINGS_FILE in texts:
        source.settings, issues = parse_settings(texts[SETTINGS_FILE], shown)
        source.issues.extend(issues)


def _check_duplicate_ids(source: BundleSource) -> None:
    first: dict[str, ParsedPolicy] = {}
    for policy in source.policies:
        info = policy.info
        earlier = first.setdefault(info.id, policy)
        if earlier is not policy:
            source.issues.append(
                PolicyIssue(
                    source.shown(info.file),
                    info.line,
                    f"duplicate policy id `{info.id}`, already used at {earlier.info.location}; "
                    "give each policy its own @id",
                )
            )
    if len(first) != len(source.policies):
        source.policies = list(first.values())


def _read_schema(source: BundleSource, texts: dict[str, str]) -> None:
    present = [name for name in (SCHEMA_FILE, SCHEMA_JSON_FILE) if name in source.files]
    if len(present) > 1:
        source.issues.append(
            PolicyIssue(
                source.shown(SCHEMA_JSON_FILE),
                None,
                f"a bundle has one schema; remove {SCHEMA_JSON_FILE} or {SCHEMA_FILE}",
            )
        )
        return
    if not present or present[0] not in texts:
        return
    name = present[0]
    text = texts[name]
    try:
        if name == SCHEMA_JSON_FILE:
            source.schema = _json_schema(text)
        else:
            source.schema = cedarpy.Schema.from_str(text)
    except ValueError as exc:
        line = _schema_error_line(text, str(exc), json_format=name == SCHEMA_JSON_FILE)
        source.issues.append(PolicyIssue(source.shown(name), line, f"invalid schema: {exc}"))
        return
    if source.policies:
        _validate(source, source.schema)


def _json_schema(text: str) -> cedarpy.Schema:
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    return cedarpy.Schema.from_json_str(text)


def _schema_error_line(text: str, error: str, *, json_format: bool) -> int | None:
    if json_format:
        match = _JSON_LINE.search(error)
        if match is not None:
            return int(match.group(1))
        return find_token_line(text, error)
    masked = mask(text)
    if error.startswith(_SCHEMA_SYNTAX):
        return locate_error(
            text, masked, error, _schema_parse_error, syntax=_is_schema_syntax_error
        )
    return find_token_line(masked, error)


def _is_schema_syntax_error(message: str) -> bool:
    return message.startswith(_SCHEMA_SYNTAX) and (END_OF_INPUT in message or "token" in message)


def _schema_parse_error(text: str) -> str | None:
    try:
        cedarpy.Schema.from_str(text)
    except ValueError as exc:
        return str(exc)
    return None


def check_against_schema(path: Path | str, schema_text: str, what: str) -> list[PolicyIssue]:
    """The bundle's problems, then every policy type-checked against ``schema_text`` (a
    schema written elsewhere, e.g. from an app's tools; ``what`` names it in messages),
    each mismatch at the line of the name it is about."""
    source = read_bundle(path)
    if source.issues:
        return source.issues
    _validate(source, cedarpy.Schema.from_str(schema_text), what)
    return sorted(source.issues, key=lambda i: (i.file, i.line or 0))


def _validate(source: BundleSource, schema: cedarpy.Schema, what: str = "the schema") -> None:
    """Type-check every policy against the schema; Cedar numbers the policies in text order."""
    text = "\n".join(policy.info.text for policy in source.policies)
    result = cedarpy.validate_policies(text, schema)
    by_cedar_id = {f"policy{n}": policy.info for n, policy in enumerate(source.policies)}
    errors = list(result.errors)
    explained = {e.policy_id for e in errors if _NO_APPLICABLE_ACTION not in e.error}
    for error in errors:
        if _NO_APPLICABLE_ACTION in error.error and error.policy_id in explained:
            continue  # the unknown action it follows from is reported
        info = by_cedar_id.get(error.policy_id)
        message = _plain(_strip_policy_prefix(error.error, error.policy_id))
        if info is None:
            source.issues.append(PolicyIssue(str(source.path), None, f"{what}: {message}"))
            continue
        offset = _line_of_name(info.text, message)
        source.issues.append(
            PolicyIssue(
                source.shown(info.file),
                info.line + offset - 1 if offset is not None else info.line,
                f"policy `{info.id}` does not match {what}: {message}",
            )
        )


_ENTITY_IN_MESSAGE = re.compile(r"^unknown (?:tool|role) `([^`]*)`")
_PATH_IN_MESSAGE = re.compile(r"^unknown (?:argument|attribute) `(\w+)`")
_DECIMAL_IN_MESSAGE = re.compile(r'^(decimal\("[^"]*"\)) is not a decimal')


def _line_of_name(policy: str, message: str) -> int | None:
    """The line (from 1) of the policy where the name the message is about appears:
    ``Role::"helpdsk"`` at ``"helpdsk"``, ``args.amout`` at ``amout``; comments skipped."""
    patterns = [re.escape(q) for q in _DECIMAL_IN_MESSAGE.findall(message)]
    patterns += [re.escape(f'"{q}"') for q in _ENTITY_IN_MESSAGE.findall(message)]
    patterns += [rf"\b{re.escape(n)}\b" for n in _PATH_IN_MESSAGE.findall(message)]
    lines = [line.split("//", 1)[0] for line in policy.split("\n")]
    for pattern in patterns:
        for number, line in enumerate(lines, 1):
            if re.search(pattern, line):
                return number
    return None


def _strip_policy_prefix(message: str, cedar_id: str) -> str:
    for prefix in (f"for policy `{cedar_id}`, ", f"for policy `{cedar_id}`: "):
        message = message.removeprefix(prefix)
    return message


_NO_APPLICABLE_ACTION = "unable to find an applicable action"
_PLAIN = (
    (re.compile(r'unrecognized action `Action::"([^"]*)"`'), r"unknown tool `\1`"),
    (
        re.compile(r'entity `Role::"([^"]*)"` is of an enumerated entity type.*'),
        r"unknown role `\1`",
    ),
    (
        re.compile(r'attribute `args\.(\w+)` in context for Action::"([^"]*)" not found'),
        r"unknown argument `\1` of tool `\2`",
    ),
    (
        re.compile(r"attribute `(\w+)` on entity type `(\w+)` not found"),
        r"unknown attribute `\1` of `\2`",
    ),
    (
        re.compile(r'.*failed to parse as a decimal value: `"([^"`]*)"`'),
        r'decimal("\1") is not a decimal: Cedar needs a fraction, e.g. decimal("\1.0")',
    ),
)


def _plain(message: str) -> str:
    """Cedar's wording of the usual mistakes, as the names a policy author wrote."""
    for pattern, replacement in _PLAIN:
        if pattern.search(message):
            message = pattern.sub(replacement, message)
            break
    if message.endswith(" of `Tool`"):
        message += (
            " (a tool whose resource hook declares no type has the resource Tool: "
            "declare the type with proctor.policy.declare_resource)"
        )
    return message
