"""Python values as Cedar sees them: decimals, longs, sets, records, times, no nulls."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, StrEnum

import pytest

from proctor.policy import DecisionEffect, PolicyBundle
from proctor.policy._cedar import CedarValueError, cedar_decimal, cedar_record, cedar_value

from .helpers import WriteBundle, call, refund


@pytest.mark.parametrize(
    ("amount", "effect"),
    [
        ("100.00004", DecisionEffect.ALLOW),  # rounds to 100.0000
        ("100.00005", DecisionEffect.ALLOW),  # half-even: to 100.0000
        ("100.00015", DecisionEffect.REQUIRE_APPROVAL),  # half-even: to 100.0002
        ("100.0001", DecisionEffect.REQUIRE_APPROVAL),
    ],
)
def test_amounts_round_half_even_to_four_places(
    support: PolicyBundle, amount: str, effect: DecisionEffect
) -> None:
    assert support.decide(refund(amount)).effect is effect


def test_amount_out_of_decimal_range_denies(support: PolicyBundle) -> None:
    decision = support.decide(refund("1e20"))

    assert decision.effect is DecisionEffect.DENY
    assert decision.errors == (
        "context.args.amount: 1E+20 is outside the range of Cedar's decimal",
    )


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("12.34"), "12.3400"),
        (Decimal("-0.00001"), "0.0000"),
        (Decimal("-1.5"), "-1.5000"),
        (0.1, "0.1000"),
        (2.675, "2.6750"),
        (Decimal("922337203685477.5807"), "922337203685477.5807"),
        (Decimal("-922337203685477.5808"), "-922337203685477.5808"),
    ],
)
def test_decimal_text(value: float | Decimal, text: str) -> None:
    assert cedar_decimal(value, "x") == text


@pytest.mark.parametrize(
    "value", [Decimal("922337203685477.58075"), Decimal("NaN"), float("inf"), Decimal("1e400")]
)
def test_decimal_out_of_range_or_not_finite(value: float | Decimal) -> None:
    with pytest.raises(CedarValueError, match=r"^args\.x: "):
        cedar_decimal(value, "args.x")


def test_long_range() -> None:
    assert cedar_value(2**63 - 1, "n") == 2**63 - 1
    assert cedar_value(-(2**63), "n") == -(2**63)
    with pytest.raises(CedarValueError, match="does not fit Cedar's 64-bit Long"):
        cedar_value(2**63, "n")


def test_bool_stays_bool() -> None:
    assert cedar_value(True, "b") is True


class Color(Enum):
    RED = "red"


class Size(StrEnum):
    BIG = "big"


def test_collections_times_and_enums() -> None:
    when = datetime(2024, 6, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")

    assert cedar_record(
        {
            "tags": ["a", "b"],
            "pair": (1, 2),
            "nested": {"x": None, "y": Decimal("1")},
            "when": when,
            "day": date(2024, 6, 1),
            "wait": timedelta(hours=1, milliseconds=5),
            "color": Color.RED,
            "size": Size.BIG,
            "id": ident,
            "gone": None,
        },
        "args",
    ) == {
        "tags": ["a", "b"],
        "pair": [1, 2],
        "nested": {"y": {"__extn": {"fn": "decimal", "arg": "1.0000"}}},
        "when": {"__extn": {"fn": "datetime", "arg": "2024-06-01T10:00:00.123Z"}},
        "day": {"__extn": {"fn": "datetime", "arg": "2024-06-01"}},
        "wait": {"__extn": {"fn": "duration", "arg": "3600005ms"}},
        "color": "red",
        "size": "big",
        "id": str(ident),
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"items": [1, None]}, r"args\.items\[1\]: a set cannot hold None"),
        ({"when": datetime(2024, 1, 1)}, r"args\.when: a datetime needs a timezone"),
        ({"blob": b"x"}, r"args\.blob: a bytes has no Cedar value"),
        ({"x": {"__extn": {"fn": "ip", "arg": "1.2.3.4"}}}, r"args\.x\.__extn: .* is reserved"),
        ({1: "x"}, r"args: record keys must be strings"),
    ],
)
def test_values_cedar_cannot_hold(value: dict[object, object], message: str) -> None:
    with pytest.raises(CedarValueError, match=message):
        cedar_record(value, "args")  # type: ignore[arg-type]


def test_datetimes_compare_in_policies(write_bundle: WriteBundle) -> None:
    path = write_bundle(
        {
            "p.cedar": """
            permit(principal, action, resource)
            when { context.args.due < datetime("2025-01-01")
                   && context.args.wait <= duration("2h") };
            """
        }
    )
    bundle = PolicyBundle.load(path)
    soon = {"due": datetime(2024, 12, 31, 23, 0, tzinfo=UTC), "wait": timedelta(hours=2)}
    late = {**soon, "due": date(2025, 1, 2)}

    assert bundle.decide(call("t", "write", args=soon)).effect is DecisionEffect.ALLOW
    assert bundle.decide(call("t", "write", args=late)).effect is DecisionEffect.DENY


def test_sets_support_contains(write_bundle: WriteBundle) -> None:
    policy = 'permit(principal, action, resource) when { context.args.tags.contains("vip") };'
    path = write_bundle({"p.cedar": policy})
    bundle = PolicyBundle.load(path)

    assert (
        bundle.decide(call("t", "write", args={"tags": ["vip", "eu"]})).effect
        is DecisionEffect.ALLOW
    )
    assert bundle.decide(call("t", "write", args={"tags": ("eu",)})).effect is DecisionEffect.DENY


def test_a_value_no_policy_reads_is_not_sent(support: PolicyBundle) -> None:
    # No policy reads `context.args.blob`, so a value Cedar cannot hold does no harm there.
    request = replace(refund(), args={"order_id": "A-1", "amount": Decimal("5"), "blob": b"x"})

    assert support.decide(request).effect is DecisionEffect.ALLOW
