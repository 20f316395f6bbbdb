"""Regenerate the corpus that ``proctor bench redaction`` ships with:
``python tests/redaction/make_corpus.py src/proctor/bench/redaction_corpus.jsonl``.

Every value comes from a public specification or another project's published
examples, never from the detectors under test, and its label comes from
construction (the span is recorded as the value is placed):

- phone: libphonenumber's example numbers (``phonenumbers.example_number_for_type``)
  for every region, fixed line and mobile, in international format; and in national
  format for the regions proctor reads without a ``+``;
- iban: the SWIFT IBAN registry's BBAN format per country (as python-stdnum ships
  it), filled at random, with ISO 7064 mod 97 check digits; the registry's own
  examples; compact, grouped, lower case and hyphenated;
- card: the test numbers payment processors publish, and numbers built from the
  networks' issuer prefixes and lengths with a Luhn check digit;
- ssn: python-stdnum's documented example and numbers in the ranges the SSA
  issues, with dashes, spaces, or bare after ``SSN``;
- email: the valid addresses of RFC 5322/3696 and RFC 6531 (EAI) examples,
  address literals, and ordinary addresses;
- jwt: the examples of RFC 7519 and RFC 7515, jwt.io's, and tokens built to RFC 7519
  with several algorithms and header layouts;
- secret: vendor keys in each vendor's documented format; private keys of several
  types serialized here by ``cryptography`` from seeded secrets, and encrypted,
  OpenSSH and PGP blocks; each also JSON-escaped and truncated;
- password: credentials given by the names in detect-secrets' keyword list, in
  URLs and connection strings (RFC 3986 userinfo, libpq, JDBC, ADO.NET, Azure),
  and in ``Authorization`` headers (RFC 7617 Basic, RFC 6750 Bearer);
- token: random base64-ish strings of API-token length.

Near-miss negatives hold no sensitive value: order ids, timestamps, versions,
UUIDs, digests, tracking numbers, ISBNs, prices, IP addresses, invalid cards,
IBANs and SSNs, prose about passwords. Seeded: the same output every time.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import string
import sys
import uuid
from pathlib import Path

import phonenumbers
import stdnum.iban
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

rng = random.Random(20241204)
A62 = string.ascii_letters + string.digits
HEX = "0123456789abcdef"


def rand(n, alpha=A62):
    return "".join(rng.choice(alpha) for _ in range(n))


def digits(n):
    return "".join(rng.choice(string.digits) for _ in range(n))


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


# --- phone -------------------------------------------------------------------

# The regions whose national format proctor documents reading (no ``+``).
NATIONAL = ["US", "GB", "DE", "FR", "IT", "ES", "NL", "BE", "AT", "CH", "IE", "SE", "AU"]
NATIONAL += ["NZ", "IN", "JP", "ZA"]
TYPES = [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]
INTL = phonenumbers.PhoneNumberFormat.INTERNATIONAL
NAT = phonenumbers.PhoneNumberFormat.NATIONAL


def phones():
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in TYPES:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            out.append(phonenumbers.format_number(number, INTL))
            if region in NATIONAL:
                out.append(phonenumbers.format_number(number, NAT))
    # The formats people write that libphonenumber's formatter does not produce.
    out += [
        "+44 (0)20 7946 0958",
        "+49 (0)30 901820",
        "030/901820",
        "(030) 901820",
        "0151 23456789",
        "+4915123456789",
        "+1-202-555-0173",
        "+1.202.555.0173",
        "202.555.0173",
        "1-800-555-0199",
        "07700 900123",
        "020 7946 0958",
        "0121 496 0123",
        "+33 6 12 34 56 78",
        "06 12 34 56 78",
        "+81 3-1234-5678",
        "+91 98765 43210",
    ]
    return out


# --- IBAN --------------------------------------------------------------------

IBAN_DAT = Path(stdnum.iban.__file__).with_name("iban.dat")
REGISTRY_EXAMPLES = [  # published in the SWIFT IBAN registry and banks' documentation
    "DE89370400440532013000",
    "GB29NWBK60161331926819",
    "GB82WEST12345698765432",
    "FR1420041010050500013M02606",
    "NL91ABNA0417164300",
    "BE68539007547034",
    "CH9300762011623852957",
    "ES9121000418450200051332",
    "IT60X0542811101000000123456",
    "AT611904300234573201",
    "NO9386011117947",
    "SE4550000000058398257466",
    "PL61109010140000071219812874",
    "IE29AIBK93115212345678",
    "PT50000201231234567890154",
    "DK5000400440116243",
    "FI2112345600000785",
    "LU280019400644750000",
    "SA0380000000608010167519",
    "MT84MALT011000012345MTLCAST001S",
]
UPPER = string.ascii_uppercase
CLASSES = {"n": string.digits, "a": UPPER, "c": string.digits + UPPER}


def iban_formats():
    formats = {}
    for line in IBAN_DAT.read_text().splitlines():
        m = re.match(r'([A-Z]{2}) .*bban="([^"]+)"', line)
        if m:
            formats[m.group(1)] = re.findall(r"(\d+)!([nac])", m.group(2))
    return formats


def check_digits(cc, bban):
    num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
    return f"{98 - num % 97:02d}"


def make_iban(cc, fields, valid=True):
    bban = "".join(rand(int(n), CLASSES[k]) for n, k in fields)
    chk = check_digits(cc, bban)
    if not valid:
        chk = f"{(int(chk) + rng.randint(1, 90)) % 97 + 2:02d}"
        if chk == check_digits(cc, bban):
            chk = f"{(int(chk) + 1) % 97 + 2:02d}"
    return cc + chk + bban


def spaced(s, sep=" "):
    return sep.join(s[i : i + 4] for i in range(0, len(s), 4))


def ibans():
    out = []
    for compact in REGISTRY_EXAMPLES:
        out += [compact, spaced(compact)]
    for cc, fields in sorted(iban_formats().items()):
        out += [
            make_iban(cc, fields),
            spaced(make_iban(cc, fields)),
            make_iban(cc, fields).lower(),
            spaced(make_iban(cc, fields), "-"),
        ]
    return out


# --- payment cards -------------------------------------------------------------

TEST_CARDS = [  # published test numbers (Stripe, Adyen, Braintree, PayPal)
    "4242424242424242",
    "4000056655665556",
    "4111111111111111",
    "4012888888881881",
    "4222222222222",
    "4917610000000000",
    "4000000000003220",
    "5555555555554444",
    "2223003122003222",
    "5200828282828210",
    "5105105105105100",
    "2221000000000009",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "6011111111111117",
    "6011000990139424",
    "6011981111111113",
    "6445644564456445",
    "3056930009020004",
    "36227206271667",
    "30569309025904",
    "38520000023237",
    "3566002020360505",
    "3530111333300000",
    "3566111111111113",
    "6200000000000005",
    "6243030000000001",
    "6759649826438453",
    "5018000000000009",
    "2200000000000004",
]
NETWORKS = [  # issuer prefix, length, grouping
    ("4", 16, [4, 4, 4, 4]),
    ("4", 19, [4, 4, 4, 4, 3]),
    ("51", 16, [4, 4, 4, 4]),
    ("55", 16, [4, 4, 4, 4]),
    ("2720", 16, [4, 4, 4, 4]),
    ("34", 15, [4, 6, 5]),
    ("37", 15, [4, 6, 5]),
    ("6011", 16, [4, 4, 4, 4]),
    ("65", 16, [4, 4, 4, 4]),
    ("3528", 16, [4, 4, 4, 4]),
    ("36", 14, [4, 6, 4]),
    ("62", 16, [4, 4, 4, 4]),
    ("6304", 16, [4, 4, 4, 4]),
]


def luhn_complete(body):
    for d in string.digits:
        s = body + d
        total = 0
        for i, ch in enumerate(reversed(s)):
            v = int(ch)
            if i % 2:
                v = v * 2 - 9 if v > 4 else v * 2
            total += v
        if total % 10 == 0:
            return s
    raise AssertionError


def group(s, sizes, sep):
    out, i = [], 0
    for n in sizes:
        out.append(s[i : i + n])
        i += n
    return sep.join(x for x in out if x)


def grouping(n):
    return {15: [4, 6, 5], 14: [4, 6, 4], 19: [4, 4, 4, 4, 3], 13: [4, 4, 5]}.get(n, [4, 4, 4, 4])


def cards():
    out = []
    for n in TEST_CARDS:
        out += [n, group(n, grouping(len(n)), rng.choice([" ", "-"]))]
    for prefix, length, sizes in NETWORKS:
        for _ in range(6):
            n = luhn_complete(prefix + digits(length - len(prefix) - 1))
            sep = rng.choice([" ", "-", ""])
            out.append(group(n, sizes, sep) if sep else n)
    return out


def bad_card():
    n = luhn_complete("4" + digits(14))
    n = n[:-1] + str((int(n[-1]) + rng.randint(1, 9)) % 10)
    return group(n, [4, 4, 4, 4], rng.choice([" ", "-", ""]))


# --- US SSN --------------------------------------------------------------------


def ssn_digits():
    area = rng.choice([x for x in range(1, 900) if x != 666])
    return f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"


def ssns():
    """(context, value) pairs: dashed, spaced, bare after a word that names it."""
    out = [("SSN {v}", "536-90-4399")]  # python-stdnum's documented example
    for _ in range(40):
        d = ssn_digits()
        out.append((rng.choice(["SSN {v}", "ssn: {v}", "{v}", "taxpayer {v} on file"]),
                    f"{d[:3]}-{d[3:5]}-{d[5:]}"))  # fmt: skip
    for _ in range(15):
        d = ssn_digits()
        context = rng.choice(["SSN {v}", "social security number {v}"])
        out.append((context, f"{d[:3]} {d[3:5]} {d[5:]}"))
    for _ in range(25):
        context = rng.choice(
            ["SSN {v}", "SSN: {v}", "ssn={v}", "my social is {v}", "Social Security No. {v}",
             "SSN#{v}", "social security number: {v}", '"ssn": "{v}"']
        )  # fmt: skip
        out.append((context, ssn_digits()))
    return out


def bad_ssn():
    return rng.choice(
        [
            f"000-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}",
            f"666-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}",
            f"9{rng.randint(0, 99):02d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}",
            f"{rng.randint(1, 665):03d}-00-{rng.randint(1, 9999):04d}",
            f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-0000",
            "078-05-1120",
        ]
    )


# --- email ---------------------------------------------------------------------

RFC_EMAILS = [  # RFC 5322 / RFC 3696 valid examples, and RFC 6531 (EAI) ones
    "simple@example.com",
    "very.common@example.com",
    "FirstName.LastName@EasierReading.org",
    "x@example.com",
    "long.email-address-with-hyphens@and.subdomains.example.com",
    "user.name+tag+sorting@example.com",
    "name/surname@example.com",
    "example@s.example",
    "mailhost!username@example.org",
    "user%example.com@example.org",
    "user-@example.org",
    "customer/department=shipping@example.com",
    "$A12345@example.com",
    "!def!xyz%abc@example.com",
    "_somename@example.com",
    "Abc.123@example.com",
    '"john..doe"@example.org',
    '"Abc@def"@example.com',
    '"Fred Bloggs"@example.com',
    "postmaster@[123.123.123.123]",
    "postmaster@[IPv6:2001:0db8:85a3:0000:0000:8a2e:0370:7334]",
    "_test@[IPv6:2001:0db8:85a3:0000:0000:8a2e:0370:7334]",
    "admin@[192.168.2.1]",
    "I❤️CHOCOLATE@example.com",
    "用户@例子.广告",
    "अजय@डाटा.भारत",
    "квіточка@пошта.укр",
    "χρήστης@παράδειγμα.ελ",
    "Dörte@Sörensen.example.com",
    "коля@пример.рф",
    "θσερ@εχαμπλε.ψομ",
    "josé.garcía@correo.es",
    "müller@bücher.de",
    "伊昭傑@郵件.商務",
    "ಬೆಂಬಲ@ಮೈಸೂರು.ಭಾರತ",
    "user@xn--mller-kva.de",
]
FIRST = ["maria", "john", "aiko", "lars", "fatima", "chen", "olivia", "pierre", "sven", "ngozi"]
LAST = ["garcia", "smith", "tanaka", "nilsen", "haddad", "wei", "brown", "dubois", "berg", "okafor"]
DOMAINS = ["example.com", "mail.example.org", "acme-corp.co.uk", "shop.example.net",
           "uni.example.edu", "Example.COM", "example.io", "post.example.de"]  # fmt: skip


def emails():
    out = list(RFC_EMAILS)
    for _ in range(84):
        f, last = rng.choice(FIRST), rng.choice(LAST)
        local = rng.choice(
            [f"{f}.{last}", f"{f[0]}{last}", f"{f}+orders", f"{f}_{last}{rng.randint(1, 99)}",
             f.upper(), f"{last}-{f}", f"{f}.{last}.{rng.randint(1970, 2005)}"]
        )  # fmt: skip
        out.append(f"{local}@{rng.choice(DOMAINS)}")
    return out


# --- JWT -------------------------------------------------------------------------

RFC_JWTS = [
    # RFC 7519 section 3.1 (JWS, HS256; header with a CRLF)
    "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
    # RFC 7519 section 6.1 (unsecured: empty signature)
    "eyJhbGciOiJub25lIn0"
    ".eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.",
    # jwt.io's example
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
    ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
]


def jwts():
    out = list(RFC_JWTS)
    layouts = [
        lambda h: json.dumps(h, separators=(",", ":")),
        lambda h: json.dumps(h),
        lambda h: "{\n  " + json.dumps(h)[1:-1].replace(", ", ",\n  ") + "\n}",
        lambda h: "{ " + json.dumps(h)[1:-1] + " }",
    ]
    for i in range(45):
        alg = rng.choice(["HS256", "HS512", "RS256", "ES256", "PS384", "EdDSA"])
        header = {"alg": alg, "typ": "JWT"} if i % 3 else {"typ": "JWT", "alg": alg, "kid": rand(8)}
        payload = {
            "sub": rand(10),
            "iss": "https://auth.example.com/",
            "exp": rng.randint(1_700_000_000, 1_800_000_000),
            "scope": "orders:read",
        }
        h = b64u(layouts[i % len(layouts)](header).encode())
        p = b64u(json.dumps(payload).encode())
        out.append(f"{h}.{p}.{b64u(rng.randbytes(rng.choice([32, 64, 256])))}")
    for _ in range(5):  # JWE, RFC 7516 compact serialization: five parts
        h = b64u(json.dumps({"alg": "RSA-OAEP", "enc": "A256GCM"}).encode())
        parts = [b64u(rng.randbytes(n)) for n in (256, 12, 64, 16)]
        out.append(".".join([h, *parts]))
    return out


# --- secrets -----------------------------------------------------------------------


def vendor_keys():
    aws = string.ascii_uppercase + "234567"
    makers = [
        lambda: f"sk-proj-{rand(48, A62 + '_-')}",
        lambda: f"sk-{rand(20)}T3BlbkFJ{rand(20)}",
        lambda: f"sk-ant-api03-{rand(93, A62 + '_-')}AA",
        lambda: f"sk_live_{rand(24)}",
        lambda: f"rk_test_{rand(24)}",
        lambda: f"whsec_{rand(32)}",
        lambda: "AKIA" + rand(16, aws),
        lambda: "ASIA" + rand(16, aws),
        lambda: f"ghp_{rand(36)}",
        lambda: f"gho_{rand(36)}",
        lambda: f"github_pat_{rand(22)}_{rand(59)}",
        lambda: f"glpat-{rand(20, A62 + '_-')}",
        lambda: f"xoxb-{digits(11)}-{digits(12)}-{rand(24)}",
        lambda: f"xoxp-{digits(11)}-{digits(11)}-{digits(12)}-{rand(32, HEX)}",
        lambda: "AIza" + rand(35, A62 + "_-"),
        lambda: f"SG.{rand(22, A62 + '_-')}.{rand(43, A62 + '_-')}",
        lambda: f"SK{rand(32, HEX)}",
        lambda: f"{rand(32, HEX)}-us{rng.randint(1, 21)}",
        lambda: f"npm_{rand(36)}",
        lambda: f"pypi-AgEIcHlwaS5vcmc{rand(70, A62 + '_-')}",
        lambda: f"sq0csp-{rand(43, A62 + '_-')}",
        lambda: f"{digits(10)}:AA{rand(33, A62 + '_-')}",
        lambda: f"hf_{rand(34)}",
        lambda: f"shpat_{rand(32, HEX)}",
        lambda: "AGE-SECRET-KEY-1" + rand(58, string.ascii_uppercase + string.digits),
        lambda: f"hooks.slack.com/services/T{rand(8, aws)}/B{rand(8, aws)}/{rand(24)}",
    ]
    return [make() for make in makers for _ in range(4)]


SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % q for q in range(3, int(p**0.5) + 1, 2))]


def probable_prime(n):
    if any(n % p == 0 for p in SMALL_PRIMES):
        return False
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(24):
        x = pow(rng.randrange(2, n - 1), d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def prime(bits):
    while True:
        n = rng.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if probable_prime(n):
            return n


def rsa_key(bits):
    """An RSA key from seeded primes: ``cryptography`` generates from the OS's randomness."""
    e = 65537
    while True:
        p, q = prime(bits // 2), prime(bits // 2)
        phi = (p - 1) * (q - 1)
        if p != q and phi % e:
            break
    d = pow(e, -1, phi)
    public = rsa.RSAPublicNumbers(e, p * q)
    numbers = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), rsa.rsa_crt_iqmp(p, q), public
    )
    return numbers.private_key()


def armored(label, body_bytes, headers=""):
    body = base64.b64encode(body_bytes).decode()
    lines = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{headers}{lines}\n-----END {label}-----"


def private_keys():
    """Keys of several types from seeded secrets, serialized by ``cryptography`` (PKCS #8
    and traditional PEM); and, where serializing needs the OS's randomness (encrypted
    keys, OpenSSH's check integers, PGP), blocks of the same armour (RFC 7468, RFC 1421,
    RFC 4880) around seeded bytes."""
    pkcs8 = serialization.PrivateFormat.PKCS8
    trad = serialization.PrivateFormat.TraditionalOpenSSL
    plain = serialization.NoEncryption()
    pem = serialization.Encoding.PEM
    keys = [
        (rsa_key(2048), [pkcs8, trad]),
        (rsa_key(1024), [pkcs8, trad]),
        (ec.derive_private_key(rng.getrandbits(250), ec.SECP256R1()), [pkcs8, trad]),
        (ec.derive_private_key(rng.getrandbits(380), ec.SECP384R1()), [pkcs8, trad]),
        (ed25519.Ed25519PrivateKey.from_private_bytes(rng.randbytes(32)), [pkcs8]),
        (ed448.Ed448PrivateKey.from_private_bytes(rng.randbytes(57)), [pkcs8]),
    ]
    out = []
    for key, formats in keys:
        for fmt in formats:
            out.append(key.private_bytes(pem, fmt, plain).decode().strip())
    iv = rng.randbytes(16).hex().upper()
    out += [
        armored("ENCRYPTED PRIVATE KEY", rng.randbytes(1218)),
        armored(
            "RSA PRIVATE KEY",
            rng.randbytes(1192),
            f"Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,{iv}\n\n",
        ),
        armored("OPENSSH PRIVATE KEY", b"openssh-key-v1\x00" + rng.randbytes(400)),
        armored("PGP PRIVATE KEY BLOCK", rng.randbytes(900), "Version: GnuPG v2\n\n"),
        armored("DSA PRIVATE KEY", rng.randbytes(440)),
    ]
    return out


# --- passwords ----------------------------------------------------------------------

KEYWORDS = ["password", "passwd", "pwd", "DB_PASSWORD", "api_key", "apiKey", "client_secret",
            "secret", "private_key", "auth_key", "db_pass", "access_token", "refresh_token",
            "MYSQL_ROOT_PASSWORD", "passphrase", "contraseña", "Passwort"]  # fmt: skip


def a_password():
    return rng.choice(
        [rand(rng.randint(8, 20)), f"{rng.choice(['Summer', 'hunter', 'Tr0ub4dor'])}{digits(2)}!",
         rand(12, A62 + "!#%^*-_+"), "correct horse battery staple", f"p@ss{digits(4)}"]
    )  # fmt: skip


def passwords():
    """(text, [(start, end)]) pairs; the span is the credential only."""
    out = []

    def place(template, value):
        start = template.index("{v}")
        text = template.replace("{v}", value)
        out.append((text, [(start, start + len(value))]))

    for _ in range(60):
        key = rng.choice(KEYWORDS)
        pw = a_password()
        if " " in pw:
            template = rng.choice(['{k}="{{v}}"', '"{k}": "{{v}}"', "{k}: '{{v}}'"])
        else:
            template = rng.choice(
                ["{k}={{v}}", '{k}="{{v}}"', '"{k}": "{{v}}"', "{k}: {{v}}", "{k} = '{{v}}'",
                 "export {k}={{v}}", "--{k}={{v}}", "'{k}': '{{v}}'", "{k}:={{v}}"]
            )  # fmt: skip
        place(template.format(k=key), pw)
    schemes = ["postgres", "postgresql", "mysql", "mongodb+srv", "redis", "amqp", "ftp", "https"]
    for _ in range(40):
        user = rng.choice(["app", "admin", "svc_orders", "root", "maria"])
        pw = rand(rng.randint(8, 24), A62 + "!$*_-")
        host = rng.choice(["db.internal", "10.0.3.7", "cluster0.ab1cd.mongodb.net", "localhost"])
        place(f"{rng.choice(schemes)}://{user}:{{v}}@{host}:5432/orders", pw)
    for _ in range(10):
        pw = rand(16)
        place(rng.choice([
            "Server=db.internal;Database=orders;User Id=app;Password={v};",
            "host=db.internal port=5432 dbname=orders user=app password={v}",
            "jdbc:mysql://db.internal:3306/orders?user=app&password={v}",
            "Data Source=sql01;Initial Catalog=crm;User ID=sa;Pwd={v};",
        ]), pw)  # fmt: skip
    for _ in range(5):
        key = base64.b64encode(rng.randbytes(64)).decode()
        place("DefaultEndpointsProtocol=https;AccountName=acme;AccountKey={v};", key)
    for _ in range(10):
        cred = base64.b64encode(f"{rand(6)}:{a_password()}".encode()).decode()
        place("Authorization: Basic {v}", cred)
    for _ in range(10):
        place("Authorization: Bearer {v}", rand(rng.choice([20, 32, 40]), A62 + "-._~"))
    return out


# --- tokens ---------------------------------------------------------------------------


def tokens():
    return [rand(rng.choice([32, 36, 40, 48]), A62 + ("_-" if i % 3 else "")) for i in range(50)]


# --- near misses ----------------------------------------------------------------------


def sha(n=32):
    return hashlib.sha256(rng.randbytes(16)).hexdigest()[: n * 2]


def pid():
    prefix = rng.choice(["run", "apr", "aud", "wrk", "mc"])
    return f"{prefix}_{rng.randrange(16**12):012x}{rng.randbytes(10).hex()}"


def isbn13():
    body = "978" + digits(9)
    total = sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body))
    n = body + str((10 - total % 10) % 10)
    return rng.choice([n, f"{n[:3]}-{n[3]}-{n[4:7]}-{n[7:12]}-{n[12]}"])


def isbn10():
    body = digits(9)
    check = sum((10 - i) * int(c) for i, c in enumerate(body)) % 11
    c = "X" if (11 - check) % 11 == 10 else str((11 - check) % 11)
    n = body + c
    return rng.choice([n, f"{n[0]}-{n[1:4]}-{n[4:9]}-{n[9]}"])


def hms(sep=":"):
    return f"{rng.randint(10, 23)}{sep}{rng.randint(10, 59)}{sep}{rng.randint(10, 59)}"


def semver():
    return f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)}"


def ipv4():
    return (
        f"{rng.randint(1, 250)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    )


def near_miss():
    d = digits
    return rng.choice(
        [
            lambda: f"order A-{rng.randint(1000, 9999)}",
            lambda: f"ORD-2024-{d(6)}",
            lambda: f"order #{d(8)}",
            lambda: f"order {d(10)}",
            lambda: f"INV-2024-{d(5)}",
            lambda: f"${rng.randint(1, 9)},{d(3)}.{d(2)}",
            lambda: f"€{rng.randint(10, 999)},{d(2)}",
            lambda: f"£{rng.randint(1, 99)}.{d(2)} inc. VAT",
            lambda: f"qty {rng.randint(1, 20)} x ${rng.randint(1, 99)}.{d(2)}",
            lambda: f"+{rng.randint(10, 99)}.{d(2)} EUR",
            lambda: f"+{rng.randint(1, 9)} item(s)",
            lambda: f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
            lambda: f"{rng.randint(1, 28):02d}/{rng.randint(1, 12):02d}/2024",
            lambda: f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.2024",
            lambda: f"2024-05-02T{hms()}Z",
            lambda: f"2024-05-02 {hms()}.{d(6)}",
            lambda: f"Thu, 02 May 2024 {rng.randint(10, 23)}:{rng.randint(10, 59)}:00 +0000",
            lambda: f"{rng.randint(1_600_000_000, 1_800_000_000)}",
            lambda: f"v{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
            lambda: f"{semver()}-rc.{rng.randint(1, 9)}",
            lambda: f"version {rng.randint(1, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{d(4)}",
            lambda: str(uuid.UUID(bytes=rng.randbytes(16))),
            lambda: str(uuid.UUID(bytes=rng.randbytes(16))).upper(),
            lambda: sha(),
            lambda: f"sha256:{sha()}",
            lambda: hashlib.sha1(rng.randbytes(8)).hexdigest(),
            lambda: hashlib.md5(rng.randbytes(8)).hexdigest(),
            lambda: hashlib.sha512(rng.randbytes(8)).hexdigest(),
            lambda: f"commit {hashlib.sha1(rng.randbytes(8)).hexdigest()[:7]}",
            lambda: pid(),
            lambda: f"1Z{rand(6, string.ascii_uppercase + string.digits)}{d(10)}",
            lambda: f"9400 1{d(3)} {d(4)} {d(4)} {d(4)} {d(2)}",
            lambda: f"9400{d(18)}",
            lambda: f"FedEx {d(12)}",
            lambda: f"DHL {d(10)}",
            lambda: f"ISBN {isbn13()}",
            lambda: f"ISBN {isbn10()}",
            lambda: f"EAN {d(13)}",
            lambda: ".".join(str(rng.randint(0, 255)) for _ in range(4)),
            lambda: f"{ipv4()}:{rng.randint(1024, 65535)}",
            lambda: f"card ending {d(4)}",
            lambda: f"card {bad_card()}",
            lambda: f"IBAN {make_iban('DE', [('8', 'n'), ('10', 'n')], valid=False)}",
            lambda: f"ssn {bad_ssn()}",
            lambda: "proctor-worker-5d8f7b9c6-x2k4p",
            lambda: "ProctorRuntimeConfigurationLoader",
            lambda: f"customer_exports/2024_05_02/batch_{d(4)}",
            lambda: f"lat {rng.uniform(-90, 90):.6f}, lon {rng.uniform(-180, 180):.6f}",
            lambda: f"{rng.randint(1, 99)}.{d(1)}% of {d(5)} requests",
            lambda: f"took {rng.randint(1, 999)}ms, {d(6)} bytes",
            lambda: f"tel. ext {d(3)}",
            lambda: "password reset link sent",
            lambda: "Password: must be at least 12 characters",
            lambda: "password: ********",
            lambda: 'password="[redacted]"',
            lambda: "set api_key=${API_KEY} in .env",
            lambda: "the password field is required",
            lambda: f"input_tokens={d(4)} output_tokens={d(3)}",
            lambda: f"room {d(3)}, floor {rng.randint(1, 40)}",
            lambda: f"{d(3)}-{d(3)}-{d(3)}-{d(3)}",
            lambda: f"part no. {d(2)}-{d(4)}-{d(2)}",
            lambda: f"SKU {rand(3, string.ascii_uppercase)}-{d(5)}",
            lambda: f"docker.io/library/python@sha256:{sha()}",
        ]
    )()


NEGATIVE_SENTENCES = [
    "{n}",
    "Ref: {n}.",
    "Please check {n} for me.",
    '{{"ref": "{n}", "status": "ok"}}',
    "log: item={n} ok",
]

# --- placing values in text ------------------------------------------------------------

CONTEXTS = {
    "phone": ["Call me on {v}, thanks", "phone: {v}", '{{"phone": "{v}"}}', "SMS to {v}.", "{v}"],
    "iban": ["My IBAN is {v}.", "iban={v}", '{{"payout": {{"iban": "{v}"}}}}', "to {v} please"],
    "card": ["card {v} exp 12/27", "Paid with {v}.", '{{"pan": "{v}"}}', "charge card={v} ok"],
    "email": ["write to {v}.", "From: {v}", '{{"user": "{v}"}}', "<{v}>", "contact {v} today"],
    "jwt": ["Authorization: Bearer {v}", "token={v}", '{{"id_token": "{v}"}}', "jwt {v} expired"],
    "secret": ["key {v} leaked", "OPENAI_KEY={v}", '{{"config": {{"key": "{v}"}}}}', "{v}"],
    "token": ["session {v} next", "token {v}.", '{{"session": "{v}"}}'],
}
lines = []


def add(text, spans, source):
    lines.append(
        {"source": source, "text": text,
         "spans": [{"kind": k, "start": s, "end": e} for s, e, k in spans]}
    )  # fmt: skip


def place(kind, value, context=None, source="corpus"):
    context = context or rng.choice(CONTEXTS[kind])
    text = context.replace("{{", "{").replace("}}", "}")
    start = text.index("{v}")
    text = text.replace("{v}", value)
    add(text, [(start, start + len(value), kind)], source)


def declared():
    fields = ["password", "card_number", "api_key", "dob"]
    for _ in range(20):
        dob = f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
        value = {
            "user": {"name": "J. Doe", "password": rand(12), "profile": {"dob": dob}},
            "payment": [
                {"card_number": rng.choice(cards()), "last4": "1111"},
                {"card_number": None},
            ],
            "api_key": rng.choice([rand(20), 12345, ["a", "b"], {"nested": "x"}]),
            "note": "plain",
        }
        lines.append({"source": "declared", "value": value, "fields": fields})


def keys():
    for pem in private_keys():
        place("secret", pem, "loaded key file:\n{v}\nfrom vault", source="cryptography")
        escaped = json.dumps(pem)[1:-1]
        place("secret", escaped, '{{"private_key_pem": "{v}"}}', source="cryptography")
        truncated = pem[: len(pem) // 2]
        place("secret", truncated, "pasted: {v}", source="cryptography")


def mixed():
    """Several kinds in one text, as in a support ticket or a log line."""
    pools = {"phone": phones, "email": emails, "card": cards, "iban": ibans}
    for _ in range(60):
        spans, text = [], "Hi, "
        for kind in rng.sample(sorted(pools), 2):
            v = rng.choice(pools[kind]())
            spans.append((len(text), len(text) + len(v), kind))
            text += v + f" and order {near_miss()}, "
        add(text + "thanks!", spans, "mixed")


def main(path):
    for v in phones():
        place("phone", v, source="libphonenumber")
    for v in ibans():
        place("iban", v, source="iban-registry")
    for v in cards():
        place("card", v, source="card-networks")
    for context, v in ssns():
        place("ssn", v, context, source="ssa")
    for v in emails():
        place("email", v, source="rfc5322-6531")
    for v in jwts():
        place("jwt", v, source="rfc7519")
    for v in vendor_keys():
        place("secret", v, source="vendor-formats")
    keys()
    for text, spans in passwords():
        add(text, [(s, e, "password") for s, e in spans], "detect-secrets-keywords")
    for v in tokens():
        place("token", v, source="random")
    mixed()
    for _ in range(600):
        n = near_miss()
        add(rng.choice(NEGATIVE_SENTENCES).format(n=n), [], "near-miss")
    declared()
    with open(path, "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(len(lines))


if __name__ == "__main__":
    main(sys.argv[1])
