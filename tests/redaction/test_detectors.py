"""Each detector on values it must find and on look-alikes it must leave."""

from __future__ import annotations

import pytest

from proctor.redaction import detect
from proctor.redaction.detectors import (
    find_cards,
    find_emails,
    find_ibans,
    find_jwts,
    find_phones,
    find_secrets,
    find_ssns,
    find_tokens,
    iban_valid,
    luhn_valid,
)

SHA256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
RUN_ID = "run_018f3a2b4c5d1a2b3c4d5e6f7a8b9c0d1e2f"
UUID = "123e4567-e89b-12d3-a456-426614174000"

LOOKALIKES = [
    "order A-1001",
    "total $1,234.56",
    "tracking 1Z999AA10000001001",
    "USPS 9400 1000 0000 0000 0000 00",
    "delivered 2024-05-02",
    "on 02/05/2024 at 10:31",
    "at 2024-05-02T10:31:07Z",
    "order #415-555-0100",
    "ref ORD-415-555-0100",
    "invoice INV-2024-00042",
    f"digest {SHA256}",
    f"sha256:{SHA256}",
    "commit 2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
    "md5 d41d8cd98f00b204e9800998ecf8427e",
    f"run {RUN_ID}",
    "approval apr_018f3a2b4c5d9e8d7c6b5a4f3e2d1c0b9a8f",
    f"span {UUID}",
    "card 4111 1111 1111 1112",
    "iban DE89 3704 0044 0532 0130 01",
    "ssn 000-12-3456 666-12-3456 912-34-5678 123-00-4567 123-45-0000",
    "version v1.12.3 on host 10.0.12.7",
    "pod proctor-worker-5d8f7b9c6-x2k4p",
    "class ProctorRuntimeConfigurationLoader",
    "path customer_exports/2024_05_02/batch_0042",
    "+3 items, +12.50 EUR",
    "qty 2 x $19.99",
    "order 1234567890",
]


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert detect(text) == []


def _found(detector: object, text: str) -> list[str]:
    assert callable(detector)
    return [text[s.start : s.end] for s in detector(text)]


@pytest.mark.parametrize(
    "value",
    [
        "maria.garcia@example.com",
        "j.doe+orders@mail.example.co.uk",
        "SUPPORT-team_2@Example.COM",
    ],
)
def test_emails(value: str) -> None:
    assert _found(find_emails, f"write to {value}. Thanks") == [value]


@pytest.mark.parametrize("text", ["user@localhost", "@handle", "a@b", "name at example dot com"])
def test_not_emails(text: str) -> None:
    assert find_emails(text) == []


@pytest.mark.parametrize(
    "value",
    [
        "+1 415 555 0132",
        "+1 (212) 555-0147",
        "+44 20 7946 0958",
        "+33 1 42 68 53 00",
        "+4915123456789",
        "+81 3-1234-5678",
        "(415) 555-0199",
        "415-555-0142",
        "415.555.0173",
        "1-800-555-0199",
        "020 7946 0018",
        "01 42 68 53 00",
    ],
)
def test_phones(value: str) -> None:
    assert _found(find_phones, f"call {value}, thanks") == [value]


@pytest.mark.parametrize(
    "text",
    [
        "2024-05-02",
        "order 4155550100",
        "#415-555-0100",
        "$1,234.56",
        "+12.50 EUR",
        "+1 item",
        "1Z999AA10000001001",
        "10.0.12.7",
        "123-45-6789",
    ],
)
def test_not_phones(text: str) -> None:
    assert find_phones(text) == []


def test_an_international_number_running_into_a_figure_gives_it_back() -> None:
    text = "+44 20 7946 0958 4111 1111 1111 1111"
    assert _found(find_phones, text)[0] == "+44 20 7946 0958"
    assert [s.kind for s in detect(text)] == ["phone", "card"]


@pytest.mark.parametrize(
    "value",
    [
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "4111111111111111",
        "5555 5555 5555 4444",
        "2221 0000 0000 0009",
        "3782 822463 10005",
        "378282246310005",
        "6011 1111 1111 1117",
        "4111 1111 1111 1111 003",
    ],
)
def test_cards(value: str) -> None:
    assert luhn_valid(value.replace(" ", "").replace("-", ""))
    assert _found(find_cards, f"card: {value} exp 12/27") == [value]


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "9400 1000 0000 0000 0000 00",  # tracking number, unknown prefix
        "0000 0000 0000 0000",
        "1234567890123",  # unknown prefix
        "A-4111111111111111",  # part of a reference
        "4111 1111-1111 1111",  # mixed separators
    ],
)
def test_not_cards(text: str) -> None:
    assert find_cards(text) == []


@pytest.mark.parametrize(
    "value",
    [
        "DE89 3704 0044 0532 0130 00",
        "DE89370400440532013000",
        "GB82 WEST 1234 5698 7654 32",
        "FR14 2004 1010 0505 0001 3M02 606",
        "NL91ABNA0417164300",
        "BE68 5390 0754 7034",
    ],
)
def test_ibans(value: str) -> None:
    assert iban_valid(value.replace(" ", ""))
    assert _found(find_ibans, f"IBAN: {value}, ref A-1001") == [value]


@pytest.mark.parametrize(
    "text",
    [
        "DE89 3704 0044 0532 0130 01",  # check digits wrong
        "DE89 3704 0044 0532 0130",  # too short for DE
        "XX89370400440532013000",  # no such country
        "GB82WEST1234569876543",
    ],
)
def test_not_ibans(text: str) -> None:
    assert find_ibans(text) == []


@pytest.mark.parametrize("value", ["123-45-6789", "665-01-0001", "899 99 9999"])
def test_ssns(value: str) -> None:
    assert _found(find_ssns, f"SSN {value}.") == [value]


@pytest.mark.parametrize(
    "text",
    [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "999-12-3456",
        "123-00-4567",
        "123-45-0000",
        "078-05-1120",
        "123-45 6789",
        "A-123-45-6789",
        "2024-05-02",
    ],
)
def test_not_ssns(text: str) -> None:
    assert find_ssns(text) == []


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi5XHGnBuVJ8zR0pIt9aGo4FzS\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    "value",
    [
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_1234567890abcdefghijABCDEFGHIJ123456",
        "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
        "AIzaSyA-1234567890abcdefghijklmnopqrstu",
        PEM,
    ],
)
def test_secrets(value: str) -> None:
    assert _found(find_secrets, f"key={value} ok") == [value]


def test_a_truncated_private_key_is_taken_to_its_end() -> None:
    text = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC"
    assert _found(find_secrets, text) == [text]


@pytest.mark.parametrize("text", ["sk-short", "AKIA1234", "ask-me-anything-later-please-now"])
def test_not_secrets(text: str) -> None:
    assert find_secrets(text) == []


JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)


def test_jwts() -> None:
    assert _found(find_jwts, f"Bearer {JWT}") == [JWT]


def test_a_jwt_needs_a_header_with_alg() -> None:
    no_alg = "eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"  # {"typ":"JWT"}
    not_json = "eyJub3QganNvbg.eyJzdWIiOiIxIn0.c2lnbmF0dXJl"
    assert find_jwts(no_alg) == []
    assert find_jwts(not_json) == []


@pytest.mark.parametrize(
    "value",
    [
        "Zx9Qw3Rt7Yp2Lk5Mn8Bv4Cx1Df6Gh0Js",
        "dGhpcyBpcyBhIHNlY3JldCB0b2tlbjEyMw==",
        "a8F3kd92JfLq0zX7wPq2Rt5y_Hn4Vb6Mc",
    ],
)
def test_tokens(value: str) -> None:
    assert _found(find_tokens, f"api_key={value} next") == [value]


@pytest.mark.parametrize(
    "text",
    [
        SHA256,
        SHA256[:40],
        SHA256[:32],
        RUN_ID,
        "wrk_018f3a2b4c5d1a2b3c4d5e6f7a8b9c0d1e2f",
        UUID,
        "FR3440657681128337J3XFDFQ92",
        "snake_case_identifier_for_the_thing_2",
        "/var/lib/proctor/store/2024/05/02/a1b2c3d4e5f6g7",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1a",
    ],
)
def test_not_tokens(text: str) -> None:
    assert find_tokens(text) == []


def test_overlaps_go_to_the_earlier_kind() -> None:
    text = "key sk_live_4eC39HqLyjWDarjtT1zdp7dc and Zx9Qw3Rt7Yp2Lk5Mn8Bv4Cx1@example.com"
    assert [s.kind for s in detect(text)] == ["secret", "email"]
