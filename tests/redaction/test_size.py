"""The size limit of tool arguments and results: configurable per tenant, and clear."""

from __future__ import annotations

import pytest

from proctor.errors import PayloadTooLarge, ProctorError
from proctor.redaction.policy import Redaction, payload_size
from proctor.redaction.settings import DEFAULT_MAX_PAYLOAD_BYTES, RedactionSettings


def _redaction(settings: dict[str, object]) -> Redaction:
    return Redaction(RedactionSettings.model_validate(settings), b"secret")


def test_the_default_limit_is_one_mebibyte() -> None:
    redaction = _redaction({})
    assert redaction.limit("acme") == DEFAULT_MAX_PAYLOAD_BYTES == 1 << 20
    assert redaction.check_size("acme", {"text": "x" * 1000}, "arguments of note") > 1000
    with pytest.raises(PayloadTooLarge):
        redaction.check_size("acme", "x" * (DEFAULT_MAX_PAYLOAD_BYTES + 1), "result of note")


def test_an_oversized_payload_fails_clearly() -> None:
    redaction = _redaction({"default": {"max_payload_bytes": 100}})
    with pytest.raises(PayloadTooLarge) as raised:
        redaction.check_size("acme", {"text": "é" * 100}, "arguments of note")
    error = raised.value
    assert isinstance(error, ProctorError)
    assert error.http_status == 413
    assert (error.what, error.size, error.limit) == ("arguments of note", 211, 100)
    assert error.setting == "redaction.default.max_payload_bytes"
    assert str(error) == (
        "arguments of note is 211 bytes, over the limit of 100 bytes; send less, or raise "
        "`redaction.default.max_payload_bytes` in the bundle's proctor.yaml"
    )


def test_a_tenant_has_its_own_limit() -> None:
    redaction = _redaction(
        {"default": {"max_payload_bytes": 100}, "tenants": {"big": {"max_payload_bytes": 10_000}}}
    )
    assert redaction.limit("big") == 10_000
    assert redaction.limit("small") == 100
    redaction.check_size("big", "x" * 5_000, "result of fetch")
    with pytest.raises(PayloadTooLarge, match=r"redaction\.tenants\.big\.max_payload_bytes"):
        redaction.check_size("big", "x" * 20_000, "result of fetch")
    with pytest.raises(PayloadTooLarge, match=r"redaction\.default\.max_payload_bytes"):
        redaction.check_size("small", "x" * 200, "result of fetch")


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_payload_bytes"):
        RedactionSettings.model_validate({"default": {"max_payload_bytes": 0}})


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("abc", 3),
        ("é", 2),
        (b"\x00\x01", 2),
        ({"a": 1}, 7),
        ([1, 2], 5),
        ({"when": __import__("datetime").date(2024, 5, 2)}, 21),
        ({1: "x"}, 9),
    ],
)
def test_payload_size_is_utf8_json(value: object, size: int) -> None:
    assert payload_size(value) == size


def test_a_ten_megabyte_argument_is_refused_at_once() -> None:
    import time

    redaction = _redaction({})
    start = time.perf_counter()
    with pytest.raises(PayloadTooLarge):
        redaction.check_size("acme", {"text": "a@" * 5_000_000}, "arguments of note")
    assert time.perf_counter() - start < 1.0
