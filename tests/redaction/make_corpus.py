"""Regenerate the corpus: ``python tests/redaction/make_corpus.py tests/redaction/corpus.jsonl``.

Labels come from construction (each sensitive value is generated and its span
recorded as it is placed), never from the detectors under test. Seeded: the
same output every time.
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

rng = random.Random(20240502)
A62 = string.ascii_letters + string.digits


def luhn_complete(prefix, length):
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    for d in string.digits:
        s = body + d
        tot = 0
        for i, ch in enumerate(reversed(s)):
            v = int(ch)
            if i % 2:
                v = v * 2 - 9 if v > 4 else v * 2
            tot += v
        if tot % 10 == 0:
            return s


def group(s, sizes, sep):
    out, i = [], 0
    for n in sizes:
        out.append(s[i : i + n])
        i += n
    if i < len(s):
        out.append(s[i:])
    return sep.join(x for x in out if x)


def card():
    kind = rng.choice(["visa", "mc", "mc2", "amex", "disc", "visa19"])
    if kind == "amex":
        n = luhn_complete(rng.choice(["34", "37"]), 15)
        sep = rng.choice([" ", "-", ""])
        return group(n, [4, 6, 5], sep) if sep else n
    pre, ln = {
        "visa": ("4", 16),
        "mc": (rng.choice(["51", "52", "53", "54", "55"]), 16),
        "mc2": ("2221", 16),
        "disc": ("6011", 16),
        "visa19": ("4", 19),
    }[kind]
    n = luhn_complete(pre, ln)
    sep = rng.choice([" ", "-", ""])
    return group(n, [4, 4, 4, 4, 3], sep) if sep else n


def bad_card():
    n = luhn_complete("4", 16)
    n = n[:-1] + str((int(n[-1]) + rng.randint(1, 9)) % 10)
    return group(n, [4, 4, 4, 4], rng.choice([" ", "-"]))


def iban_check(cc, bban):
    num = int("".join(str(int(c, 36)) for c in bban + cc + "00"))
    return f"{98 - num % 97:02d}"


BBAN = {
    "DE": lambda: "".join(rng.choice(string.digits) for _ in range(18)),
    "GB": lambda: (
        "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        + "".join(rng.choice(string.digits) for _ in range(14))
    ),
    "FR": lambda: (
        "".join(rng.choice(string.digits) for _ in range(10))
        + "".join(rng.choice(string.digits + string.ascii_uppercase) for _ in range(11))
        + "".join(rng.choice(string.digits) for _ in range(2))
    ),
    "NL": lambda: (
        "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        + "".join(rng.choice(string.digits) for _ in range(10))
    ),
    "ES": lambda: "".join(rng.choice(string.digits) for _ in range(20)),
    "BE": lambda: "".join(rng.choice(string.digits) for _ in range(12)),
    "CH": lambda: "".join(rng.choice(string.digits) for _ in range(17)),
    "IT": lambda: (
        rng.choice(string.ascii_uppercase)
        + "".join(rng.choice(string.digits) for _ in range(10))
        + "".join(rng.choice(string.digits) for _ in range(12))
    ),
}


def iban(valid=True):
    cc = rng.choice(list(BBAN))
    b = BBAN[cc]()
    chk = iban_check(cc, b)
    if not valid:
        chk = f"{(int(chk) + rng.randint(1, 50)) % 97 + 2:02d}"
        if chk == iban_check(cc, b):
            chk = f"{(int(chk) + 1) % 97 + 2:02d}"
    s = cc + chk + b
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4)) if rng.random() < 0.6 else s


def ssn():
    area = rng.choice([x for x in range(1, 900) if x != 666])
    s = f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"
    return s if rng.random() < 0.85 else s.replace("-", " ")


def bad_ssn():
    return rng.choice(
        [
            f"000-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}",
            f"666-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}",
            f"9{rng.randint(0, 99):02d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}",
            f"{rng.randint(1, 665):03d}-00-{rng.randint(1, 9999):04d}",
            f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-0000",
        ]
    )


FIRST = [
    "maria",
    "john",
    "aiko",
    "lars",
    "fatima",
    "chen",
    "olivia",
    "pierre",
    "sven",
    "ngozi",
]
LAST = [
    "garcia",
    "smith",
    "tanaka",
    "nilsen",
    "haddad",
    "wei",
    "brown",
    "dubois",
    "berg",
    "okafor",
]
DOM = [
    "example.com",
    "mail.example.org",
    "acme-corp.co.uk",
    "shop.example.net",
    "uni.example.edu",
    "Example.COM",
]


def email():
    f, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice(
        [
            f"{f}.{last}",
            f"{f[0]}{last}",
            f"{f}+orders",
            f"{f}_{last}{rng.randint(1, 99)}",
            f"{f.upper()}",
            f"{last}-{f}",
        ]
    )
    return f"{local}@{rng.choice(DOM)}"


def phone():
    d = digits
    return rng.choice(
        [
            f"+1 415 555 {d(4)}",
            f"+1 (212) 555-{d(4)}",
            f"+1-646-555-{d(4)}",
            f"+44 20 7946 {d(4)}",
            f"+44 7700 900{d(3)}",
            f"+33 1 42 68 {d(2)} {d(2)}",
            f"+33 6 12 34 {d(2)} {d(2)}",
            f"+49 30 {d(6)}",
            f"+49 151 {d(8)}",
            f"+91 98765 {d(5)}",
            f"+61 2 9374 {d(4)}",
            f"+81 3-1234-{d(4)}",
            f"+4915{d(9)}",
            f"+1.415.555.{d(4)}",
            f"(415) 555-{d(4)}",
            f"415-555-{d(4)}",
            f"415.555.{d(4)}",
            f"1-800-555-{d(4)}",
            f"020 7946 {d(4)}",
            f"01 42 68 {d(2)} {d(2)}",
            f"06 12 34 {d(2)} {d(2)}",
            f"0161 496 {d(4)}",
        ]
    )


def rand(n, alpha=A62):
    return "".join(rng.choice(alpha) for _ in range(n))


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def secret():
    return rng.choice(
        [
            f"sk-proj-{rand(48, A62 + '_-')}",
            f"sk-{rand(48)}",
            f"sk-ant-api03-{rand(40, A62 + '_-')}",
            f"sk_live_{rand(24)}",
            f"sk_test_{rand(24)}",
            "AKIA" + rand(16, string.ascii_uppercase + string.digits),
            f"ghp_{rand(36)}",
            f"github_pat_{rand(22)}_{rand(59)}",
            f"xoxb-{rng.randint(10**10, 10**11)}-{rng.randint(10**11, 10**12)}-{rand(24)}",
            "AIza" + rand(35, A62 + "_-"),
        ]
    )


def pem():
    body = "\n".join(rand(64, A62 + "+/") for _ in range(rng.randint(2, 4)))
    kind = rng.choice(["", "RSA ", "EC ", "OPENSSH "])
    tail = rand(20, A62)
    return f"-----BEGIN {kind}PRIVATE KEY-----\n{body}\n{tail}==\n-----END {kind}PRIVATE KEY-----"


def jwt():
    h = b64u(json.dumps({"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}).encode())
    p = b64u(
        json.dumps(
            {"sub": rand(8), "exp": rng.randint(1.7e9, 1.8e9), "scope": "orders:read"}
        ).encode()
    )
    return f"{h}.{p}.{b64u(rng.randbytes(32))}"


def token():
    return rand(rng.choice([32, 36, 40, 48]), A62 + ("_-" if rng.random() < 0.3 else ""))


def sha():
    return hashlib.sha256(rng.randbytes(16)).hexdigest()


def pid():
    prefix = rng.choice(["run", "apr", "aud", "wrk", "mc"])
    return f"{prefix}_{rng.randrange(16**12):012x}{rng.randbytes(10).hex()}"


def digits(n):
    return "".join(rng.choice(string.digits) for _ in range(n))


def lookalike():
    d = digits
    return rng.choice(
        [
            f"A-{rng.randint(1000, 9999)}",
            f"ORD-2024-{d(6)}",
            f"${rng.randint(1, 9)},{d(3)}.{d(2)}",
            f"€{rng.randint(10, 999)},{d(2)}",
            f"1Z{rand(3, string.digits)}AA1{d(10)}",
            f"2024-0{rng.randint(1, 9)}-{rng.randint(10, 28)}",
            f"{rng.randint(10, 28)}/0{rng.randint(1, 9)}/2024",
            f"order #{rng.randint(200, 999)}-555-{d(4)}",
            f"ref ORD-415-555-{d(4)}",
            sha(),
            f"sha256:{sha()}",
            pid(),
            str(uuid.UUID(bytes=rng.randbytes(16))),
            bad_card(),
            iban(valid=False),
            bad_ssn(),
            f"INV-2024-{d(5)}",
            ".".join(
                str(rng.randint(lo, hi)) for lo, hi in ((1, 250), (0, 255), (0, 255), (1, 254))
            ),
            f"v{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}",
            hashlib.sha1(rng.randbytes(8)).hexdigest(),
            f"9400 1000 0000 {d(4)} {d(4)} {d(2)}",
            f"qty {rng.randint(1, 20)} x ${rng.randint(1, 99)}.{d(2)}",
            "proctor-worker-5d8f7b9c6-x2k4p",
            "ProctorRuntimeConfigurationLoader",
            f"2024-05-02T{rng.randint(10, 23)}:{rng.randint(10, 59)}:{rng.randint(10, 59)}Z",
            f"+{rng.randint(1, 9)} item(s)",
            f"+{rng.randint(10, 99)}.{d(2)} EUR",
            f"{d(10)}",
            f"tel. ext {d(3)}",
            hashlib.md5(rng.randbytes(8)).hexdigest(),
            f"customer_exports/2024_05_02/batch_{d(4)}",
        ]
    )


GEN = {
    "email": email,
    "phone": phone,
    "card": card,
    "iban": iban,
    "ssn": ssn,
    "secret": secret,
    "jwt": jwt,
    "token": token,
}

SUPPORT = [
    "Hi, I'm {email}, my order {lk} hasn't arrived. Call me on {phone} please.",
    "Please refund {lk} to card {card}, thanks!",
    "My IBAN is {iban} for the refund of {lk}.",
    "For the tax form: SSN {ssn}. Order {lk}.",
    "Reach me at {phone} or {email}. Reference {lk}.",
    "I paid with {card} on {lk} but was charged twice.",
    "New bank details: {iban} (account holder Maria Garcia), invoice {lk}.",
    "can u update my phone to {phone}?? old one was {phone2}",
    "Card ending ... actually full number {card}, exp 12/27, order {lk}",
    "my social is {ssn} and my email {email}",
    "Tracking says {lk} — can you check? {email}",
    "I accidentally pasted our key {secret} in the last ticket, please delete it.",
    "Our integration uses token {token} — is that why it fails? Ref {lk}.",
    "Login fails with Authorization: Bearer {jwt} on {lk}",
    "Transfer {lk} to {iban} and confirm by SMS to {phone}.",
    "Nothing sensitive here, just asking about {lk} and {lk2}.",
    "Order {lk} total was {lk2}, shipped {lk3}.",
]
TOOL = [
    '{{"customer": {{"email": "{email}", "phone": "{phone}"}}, "order": "{lk}"}}',
    '{{"payment": {{"card": "{card}", "status": "declined"}}, "run_id": "{pid}"}}',
    '{{"payout": {{"iban": "{iban}", "amount": "{lk}"}}, "digest": "{sha}"}}',
    '{{"ok": true, "result": "updated contact {email}", "ref": "{lk}"}}',
    '{{"headers": {{"authorization": "Bearer {jwt}"}}, "request_id": "{uuid}"}}',
    '{{"config": {{"OPENAI_API_KEY": "{secret}", "region": "eu-west-1"}}}}',
    '{{"employee": {{"ssn": "{ssn}", "name": "J. Doe"}}, "audit": "{pid}"}}',
    '{{"session": "{token}", "user": "{email}"}}',
    '{{"shipment": "{lk}", "eta": "{lk2}", "hash": "{sha}"}}',
    '{{"rows": [{{"phone": "{phone}"}}, {{"phone": "{phone2}"}}], "count": 2}}',
]
TRACE = [
    "step 3 tool=lookup_customer args={{'email': '{email}'}} run={pid}",
    "2024-05-02T10:31:07Z INFO charge card={card} amount={lk} run={pid}",
    "DEBUG env AWS_ACCESS_KEY_ID={secret} region=us-east-1",
    "audit {pid} sha256={sha} prev={sha2}",
    "tool send_sms to={phone} body='Your code is 482913' step=7",
    "WARN retrying with key={token} attempt=2 of {lk}",
    "request headers: Authorization: Bearer {jwt}",
    "loaded key file:\n{pem}\nfrom vault path secret/data/payments",
    "sepa_transfer iban={iban} ref={lk} status=queued",
    "verify_identity ssn={ssn} result=match {uuid}",
    "trace span {uuid} parent={uuid2} digest={sha}",
]

lines = []


def emit(tpl, src):
    text, spans, i = "", [], 0
    for m in re.finditer(r"\{(\w+)\}", tpl):
        text += tpl[i : m.start()].replace("{{", "{").replace("}}", "}")
        name = m.group(1)
        base = name.rstrip("0123456789")
        if base in GEN:
            v = GEN[base]()
            spans.append({"kind": base, "start": len(text), "end": len(text) + len(v)})
        elif base == "pem":
            v = pem()
            spans.append({"kind": "secret", "start": len(text), "end": len(text) + len(v)})
        elif base == "lk":
            v = lookalike()
        elif base == "pid":
            v = pid()
        elif base == "sha":
            v = sha()
        elif base == "uuid":
            v = str(uuid.UUID(bytes=rng.randbytes(16)))
        text += v
        i = m.end()
    text += tpl[i:].replace("{{", "{").replace("}}", "}")
    lines.append({"source": src, "text": text, "spans": spans})


for _ in range(5):
    for t in SUPPORT:
        emit(t, "support")
for _ in range(4):
    for t in TOOL:
        emit(t, "tool_result")
for _ in range(4):
    for t in TRACE:
        emit(t, "trace")
for _ in range(30):
    emit(" ".join(["{lk}"] * rng.randint(2, 5)), "lookalikes")

FIELDS = ["password", "card_number", "api_key", "dob"]
for _ in range(20):
    value = {
        "user": {
            "name": "J. Doe",
            "password": rand(12),
            "profile": {
                "dob": f"19{rng.randint(50, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
            },
        },
        "payment": [{"card_number": card(), "last4": "1111"}, {"card_number": None}],
        "api_key": rng.choice([rand(20), 12345, ["a", "b"], {"nested": "x"}]),
        "note": "plain",
    }
    lines.append({"source": "declared", "value": value, "fields": FIELDS})

with open(sys.argv[1], "w") as f:
    for line in lines:
        f.write(json.dumps(line, ensure_ascii=False) + "\n")
print(len(lines))
