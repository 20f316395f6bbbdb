"""The formats the detectors used to miss: each is found now, and its look-alikes are not."""

from __future__ import annotations

import pytest

from proctor.redaction import detect
from proctor.redaction.detectors import (
    find_emails,
    find_ibans,
    find_jwts,
    find_passwords,
    find_phones,
    find_secrets,
    find_ssns,
)


def _found(detector: object, text: str) -> list[str]:
    assert callable(detector)
    return [text[s.start : s.end] for s in detector(text)]


@pytest.mark.parametrize(
    "value",
    [
        # UK
        "020 7946 0958",
        "0121 496 0123",
        "07700 900123",
        "01632 960123",
        "+44 (0)20 7946 0958",
        "+44 7911 123456",
        # Germany
        "030 901820",
        "(030) 901820",
        "030/901820",
        "0151 23456789",
        "089 12345678",
        "+49 (0)30 901820",
        "+49 89 12345678",
        # elsewhere, with a +
        "+33 6 12 34 56 78",
        "+39 06 6982 0000",
        "+61 2 9374 4000",
        "+91 98765 43210",
        "+55 11 96123-4567",
        "+7 912 345-67-89",
        "+86 10 1234 5678",
    ],
)
def test_phones_of_many_regions(value: str) -> None:
    assert _found(find_phones, f"ring {value}, thanks") == [value]


@pytest.mark.parametrize(
    "text",
    [
        "ISBN 0-306-40615-2",
        "ISBN 978-3-16-148410-0",
        "on 02.05.2024",
        "at 2024-05-02 18:30:17.889",
        "part no. 12-3456-78",
        "10.0.12.7",
        "192.168.100.200",
        "order 4155550100",
        "USPS 9400 1000 0000 0000 0000 00",
    ],
)
def test_not_phones(text: str) -> None:
    assert find_phones(text) == []


@pytest.mark.parametrize(
    "value",
    [
        "de89370400440532013000",
        "de89 3704 0044 0532 0130 00",
        "DE89-3704-0044-0532-0130-00",
        "GB29 NWBK 6016 1331 9268 19",
        "ch9300762011623852957",
        "MT84MALT011000012345MTLCAST001S",
    ],
)
def test_ibans_in_any_case_with_spaces_or_hyphens(value: str) -> None:
    assert _found(find_ibans, f"pay to {value}.") == [value]


def test_an_iban_with_mixed_separators_is_not_taken() -> None:
    assert find_ibans("DE89 3704-0044 0532 0130 00") == []


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("SSN 536904399", "536904399"),
        ("ssn: 536904399", "536904399"),
        ('"ssn": "536904399"', "536904399"),
        ("my social is 536904399", "536904399"),
        ("Social Security No. 536904399", "536904399"),
        ("SSN 536-90-4399", "536-90-4399"),
    ],
)
def test_ssns_without_separators_after_their_name(text: str, value: str) -> None:
    assert _found(find_ssns, text) == [value]


@pytest.mark.parametrize(
    "text",
    ["order 536904399", "SSN 078051120", "SSN 000123456", "+672 10 6609", "+992 372 12 3456"],
)
def test_not_ssns(text: str) -> None:
    assert find_ssns(text) == []


@pytest.mark.parametrize(
    "value",
    [
        "用户@例子.广告",
        "अजय@डाटा.भारत",
        "квіточка@пошта.укр",
        "Dörte@Sörensen.example.com",
        "postmaster@[123.123.123.123]",
        "postmaster@[IPv6:2001:0db8:85a3:0000:0000:8a2e:0370:7334]",
        '"john..doe"@example.org',
        "user%example.com@example.org",
    ],
)
def test_international_and_literal_emails(value: str) -> None:
    assert _found(find_emails, f"mail {value} now") == [value]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("password=hunter2", "hunter2"),
        ('{"password": "correct horse battery staple"}', "correct horse battery staple"),
        ("DB_PASSWORD='s3cr3t!'", "s3cr3t!"),
        ("export API_KEY=abcd1234efgh", "abcd1234efgh"),
        ("clientSecret: Xy9_k2LmQ", "Xy9_k2LmQ"),
        ("postgres://app:Pa55w0rd@db.internal:5432/orders", "Pa55w0rd"),
        ("mongodb+srv://svc:$OY5EbO0@cluster0.ab1cd.mongodb.net", "$OY5EbO0"),
        ("Server=db;User Id=sa;Password=Tr0ub4dor;", "Tr0ub4dor"),
        ("Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l", "YWxhZGRpbjpvcGVuc2VzYW1l"),
        ("Authorization: Bearer mF_9.B5f-4.1JqM", "mF_9.B5f-4.1JqM"),
    ],
)
def test_credentials_given_by_name(text: str, value: str) -> None:
    assert _found(find_passwords, text) == [value]


@pytest.mark.parametrize(
    "text",
    [
        "password reset link sent",
        "Password: must be at least 12 characters",
        "password: ********",
        'password="[redacted]"',
        "set api_key=${API_KEY} in .env",
        "input_tokens=1234 output_tokens=56",
        "Secretary: Jane Doe",
        "basic information about the order",
    ],
)
def test_not_credentials(text: str) -> None:
    assert find_passwords(text) == []


def test_a_password_in_a_url_is_not_taken_for_an_email() -> None:
    text = "amqp://svc:pw1@broker.example.com:5672/"
    assert [(text[s.start : s.end], s.kind) for s in detect(text)] == [("pw1", "password")]


JWE = (
    "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKo"
    ".48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6ji"
    ".XFBoMYUZodetZdvTiFvSkQ"
)


@pytest.mark.parametrize(
    "value",
    [
        # RFC 7519 3.1: a header with a line break ("ey" all the same)
        "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQog"
        "Imh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        # RFC 7519 6.1: unsecured, an empty signature
        "eyJhbGciOiJub25lIn0.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
        "LmNvbS9pc19yb290Ijp0cnVlfQ.",
        # a pretty-printed header: base64 of "{\n" starts "ew"
        "ewogICJhbGciOiAiSFMyNTYiCn0.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
        JWE,
    ],
)
def test_jwts_of_every_layout(value: str) -> None:
    assert _found(find_jwts, f"token {value} end") == [value]


@pytest.mark.parametrize(
    "block",
    [
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIFHDBOBgkqhkiG9w0BBQ0wQTApBgkqhkiG9w0B\n"
        "-----END ENCRYPTED PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,"
        "2A3B4C5D6E7F8091A2B3C4D5E6F70812\n\nMIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi5XHGnBuVJ8zR0\n"
        "-----END RSA PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
        "-----END OPENSSH PRIVATE KEY-----",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: GnuPG v2\n\nlQOYBFq0Ix4BCAC5\n=Ab12\n"
        "-----END PGP PRIVATE KEY BLOCK-----",
        "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n"
        "-----END PRIVATE KEY-----",
    ],
)
def test_private_key_blocks_of_every_armour(block: str) -> None:
    assert _found(find_secrets, f'{{"key": "{block}"}}') == [block]


@pytest.mark.parametrize(
    "value",
    [
        "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",
        "npm_1234567890abcdefghijABCDEFGHIJ123456",
        "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",
        "glpat-abcdefghij1234567890",
        "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789",
    ],
)
def test_more_vendor_keys(value: str) -> None:
    assert _found(find_secrets, f"key {value} leaked") == [value]
