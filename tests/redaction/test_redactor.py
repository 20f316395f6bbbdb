"""The redactor's modes, its key, and its walk through JSON-like values."""

from __future__ import annotations

import re

import pytest

from proctor.redaction import MASK, Redactor

TEXT = "mail maria@example.com or call +44 20 7946 0958 about A-1001"


def test_mask_names_the_kind() -> None:
    assert Redactor({}, "k").text(TEXT) == (
        "mail [redacted:email] or call [redacted:phone] about A-1001"
    )


def test_hash_is_keyed_and_linkable() -> None:
    a = Redactor({"email": "hash"}, b"key-a")
    out = a.text("from maria@example.com to maria@example.com, cc john@example.com")
    tokens = re.findall(r"\[email:([0-9a-f]{12})\]", out)
    assert len(tokens) == 3
    assert tokens[0] == tokens[1] != tokens[2]
    assert a.text("maria@example.com") == f"[email:{tokens[0]}]"
    assert Redactor({"email": "hash"}, b"key-b").text("maria@example.com") != a.text(
        "maria@example.com"
    )
    assert Redactor({"email": "hash"}, "key-a").text("maria@example.com") == a.text(
        "maria@example.com"
    )


def test_hash_needs_a_key() -> None:
    with pytest.raises(ValueError, match="key"):
        Redactor({"email": "hash"}, b"")
    Redactor({"email": "mask"}, b"")  # no hashing, no key needed


def test_drop_removes_the_value() -> None:
    r = Redactor({"email": "drop", "phone": "drop"}, "k")
    assert r.text(TEXT) == "mail  or call  about A-1001"


def test_keep_leaves_the_kind_and_others_default_to_mask() -> None:
    r = Redactor({"email": "keep"}, "k")
    assert r.text(TEXT) == "mail maria@example.com or call [redacted:phone] about A-1001"


def test_default_mode_applies_to_unlisted_kinds() -> None:
    r = Redactor({"phone": "mask"}, "k", default_mode="keep")
    assert r.text(TEXT) == "mail maria@example.com or call [redacted:phone] about A-1001"


def test_values_are_redacted_recursively_and_not_mutated() -> None:
    value = {
        "customer": {"email": "maria@example.com", "orders": ["A-1001", "card 4111111111111111"]},
        "pair": ("SSN 123-45-6789", 7),
        "n": 4111111111111111,
        "ok": True,
        "none": None,
    }
    before = repr(value)
    assert Redactor({}, "k").value(value) == {
        "customer": {"email": "[redacted:email]", "orders": ["A-1001", "card [redacted:card]"]},
        "pair": ["SSN [redacted:ssn]", 7],
        "n": 4111111111111111,
        "ok": True,
        "none": None,
    }
    assert repr(value) == before


def test_declared_fields_mask_like_redact_fields() -> None:
    r = Redactor({}, "k", fields=frozenset({"password", "card"}))
    value = {
        "user": {"password": "hunter2", "note": "a@example.com"},
        "card": None,
        "x": [{"card": 1}],
    }
    assert r.value(value) == {
        "user": {"password": MASK, "note": "[redacted:email]"},
        "card": None,
        "x": [{"card": MASK}],
    }


def test_declared_fields_hash_and_drop() -> None:
    hashed = Redactor({"field": "hash"}, "k", fields=frozenset({"password"}))
    one = hashed.value({"password": "hunter2"})["password"]
    assert re.fullmatch(r"\[field:[0-9a-f]{12}\]", one)
    assert hashed.value({"a": {"password": "hunter2"}})["a"]["password"] == one
    assert hashed.value({"password": {"nested": 1}})["password"] != one
    dropped = Redactor({"field": "drop"}, "k", fields=frozenset({"password"}))
    assert dropped.value({"password": "hunter2", "user": "u"}) == {"user": "u"}


def test_text_without_anything_sensitive_is_returned_as_is() -> None:
    text = "order A-1001 shipped 2024-05-02, total $1,234.56"
    assert Redactor({}, "k").text(text) is text


@pytest.mark.parametrize(
    "value",
    ["AKIAABCDEFGHIJKLMNOP", "xoxb-abcdefghij", "a@b.co", "536-22-8143"],
)
def test_short_values_without_digits_are_still_found(value: str) -> None:
    # The shortcuts (plain short text, remembered clean text) never skip a real value,
    # the second time either.
    r = Redactor({}, key=b"k")
    for _ in range(2):
        assert value not in r.text(value)
        assert r.text("refund-needs-supervisor") == "refund-needs-supervisor"


def test_sensitive_keys_are_redacted_like_values() -> None:
    r = Redactor({}, "k")
    value = {"alice@example.com": 3, "nested": [{"4111 1111 1111 1111": "x"}], "plain": 1, 7: "y"}
    assert r.value(value) == {
        "[redacted:email]": 3,
        "nested": [{"[redacted:card]": "x"}],
        "plain": 1,
        7: "y",
    }
    hashed = Redactor({"email": "hash"}, "k").value({"alice@example.com": 3})
    assert list(hashed) == [Redactor({"email": "hash"}, "k").text("alice@example.com")]


def test_a_declared_field_under_a_sensitive_key_name_is_masked_too() -> None:
    r = Redactor({}, "k", fields=frozenset({"bob@example.com"}))
    assert r.value({"bob@example.com": "x"}) == {"[redacted:email]": MASK}


def test_strings_under_credential_keys_are_redacted_whole() -> None:
    r = Redactor({}, "k")
    value = {
        "password": "hunter2",
        "db": {"clientSecret": "abc", "api_key": "k-1", "token_count": 12},
        "password_hint": "",
        "user_password": "[redacted]",
        "note": "no secret here",
    }
    assert r.value(value) == {
        "password": "[redacted:password]",
        "db": {"clientSecret": "[redacted:password]", "api_key": "[redacted:password]",
               "token_count": 12},
        "password_hint": "",
        "user_password": "[redacted]",
        "note": "no secret here",
    }  # fmt: skip
    assert Redactor({"password": "keep"}, "k").value({"password": "hunter2"}) == {
        "password": "hunter2"
    }
    assert Redactor({"password": "drop"}, "k").value({"password": "hunter2", "a": 1}) == {"a": 1}


def test_redacting_twice_changes_nothing_more() -> None:
    r = Redactor({}, "k")
    text = 'password=hunter2, {"api_key": "abc123"}, mail maria@example.com, +44 20 7946 0958'
    once = r.text(text)
    assert r.text(once) == once
    value = {"password": "hunter2", "maria@example.com": 1}
    assert r.value(r.value(value)) == r.value(value)
