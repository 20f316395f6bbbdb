"""The retention section of proctor.yaml: durations, per-tenant overrides, clear errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from proctor.policy.settings import parse_settings
from proctor.retention.settings import Kind, RetentionSettings, format_duration, parse_duration

YAML = """\
label: shop
retention:
  default: {payloads: 90d, runs: 365d}
  tenants:
    acme: {payloads: 30d}
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("45m", timedelta(minutes=45)),
        ("90s", timedelta(seconds=90)),
        ("2w", timedelta(days=14)),
        (" 7 d ", timedelta(days=7)),
    ],
)
def test_durations_read_as_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("value", [timedelta(days=30), timedelta(hours=36), timedelta(seconds=61)])
def test_a_duration_is_written_back_in_a_form_that_reads_the_same(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


def test_a_tenant_setting_wins_over_the_default_kind_by_kind() -> None:
    settings, issues = parse_settings(YAML, "proctor.yaml")
    assert issues == []
    assert settings is not None
    acme = {e.kind: (e.ttl, e.rule) for e in settings.retention.expiries("acme")}
    assert acme == {
        Kind.PAYLOADS: (timedelta(days=30), "retention.tenants.acme.payloads=30d"),
        Kind.RUNS: (timedelta(days=365), "retention.default.runs=365d"),
    }
    other = {e.kind: e.ttl for e in settings.retention.expiries("globex")}
    assert other == {Kind.PAYLOADS: timedelta(days=90), Kind.RUNS: timedelta(days=365)}


def test_without_a_retention_section_nothing_expires() -> None:
    settings, _ = parse_settings("label: shop\n", "proctor.yaml")
    assert settings is not None
    assert not settings.retention.configured
    assert settings.retention.expiries("acme") == []


def test_a_kind_set_only_for_one_tenant_expires_only_for_it() -> None:
    settings = RetentionSettings.model_validate({"tenants": {"acme": {"runs": "10d"}}})
    assert [e.kind for e in settings.expiries("acme")] == [Kind.RUNS]
    assert settings.expiries("globex") == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30x", "`retention.tenants.acme.payloads`: '30x' is not a duration"),
        ("90", "`retention.tenants.acme.payloads`: '90' is not a duration"),
        ("0d", "`retention.tenants.acme.payloads`: '0d' keeps nothing"),
        ("thirty days", "'thirty days' is not a duration: write a whole number and a unit"),
    ],
)
def test_a_bad_duration_is_an_error_naming_the_field_the_value_and_the_line(
    value: str, message: str
) -> None:
    text = YAML.replace("{payloads: 30d}", f"{{payloads: '{value}'}}")
    settings, issues = parse_settings(text, "proctor.yaml")
    assert settings is None
    (issue,) = issues
    assert issue.line == 5
    assert message in issue.message


def test_a_bare_number_in_yaml_is_refused_not_read_as_seconds() -> None:
    settings, issues = parse_settings(YAML.replace("payloads: 90d", "payloads: 90"), "proctor.yaml")
    assert settings is None
    assert "`retention.default.payloads`: 90 is not a duration" in issues[0].message


def test_an_unknown_kind_is_an_error_listing_the_kinds() -> None:
    settings, issues = parse_settings(YAML.replace("runs: 365d", "spans: 7d"), "proctor.yaml")
    assert settings is None
    assert "unknown field `retention.default.spans`" in issues[0].message
    assert "payloads, runs" in issues[0].message
