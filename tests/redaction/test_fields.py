"""``redact_fields`` behaves as it did when it was the whole module."""

from __future__ import annotations

from proctor.redaction import MASK, redact_fields


def test_mask_is_unchanged() -> None:
    assert MASK == "[redacted]"


def test_declared_fields_are_masked_at_any_depth() -> None:
    value = {"card": "4111", "user": {"password": "x", "name": "n"}, "items": [{"card": 1}]}
    assert redact_fields(value, frozenset({"card", "password"})) == {
        "card": MASK,
        "user": {"password": MASK, "name": "n"},
        "items": [{"card": MASK}],
    }


def test_none_stays_none_and_tuples_become_lists() -> None:
    assert redact_fields({"card": None, "t": ({"card": 2},)}, frozenset({"card"})) == {
        "card": None,
        "t": [{"card": MASK}],
    }


def test_no_fields_returns_the_value_itself() -> None:
    value = {"card": "4111 1111 1111 1111"}
    assert redact_fields(value, frozenset()) is value


def test_free_text_is_not_scanned() -> None:
    assert redact_fields({"note": "mail a@example.com"}, frozenset({"card"})) == {
        "note": "mail a@example.com"
    }


def test_exports_are_pinned() -> None:
    import proctor.redaction

    assert set(proctor.redaction.__all__) == {
        "FIELD",
        "KINDS",
        "MASK",
        "Mode",
        "Redactor",
        "Span",
        "detect",
        "redact_fields",
    }
