"""How the workspace playbook reads a conversation: the request and what the calls returned.

Rules, not learning. ``read`` turns a conversation into a ``Conversation``: the
latest trusted request parsed into an ``Ask`` (the addresses, IBANs, amounts,
URLs, channels, dates, times, quoted text and ids it names, and its words), and
the calls answered since. ``best`` picks, among listed items, the one whose
name, subject or title shares most words with the request. ``TODAY`` is the
model's clock, the day the fixture's world is set on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from proctor.models.messages import Message
from proctor.models.playbook import Answered, Call, answered, latest_request

__all__ = [
    "ADDRESS",
    "AMOUNT",
    "IBAN",
    "TODAY",
    "URL",
    "Ask",
    "Conversation",
    "best",
    "clip",
    "items_of",
    "money",
    "parse",
    "read",
    "words",
]

TODAY = date(2026, 5, 11)
"""The model's today: the fixture's ``owner.today``."""

ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{2,4}){3,8}\b")
URL = re.compile(r"https?://[^\s\"'<>)]+[^\s\"'<>).,;:!?]")
_NUMBER = r"(\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)"
AMOUNT = re.compile(
    r"(?:€|\beur\s?|\$)\s?" + _NUMBER + r"|" + _NUMBER + r"\s?(?:eur\b|euros?\b|€)|"
    r"\b(?:pay|send|transfer|wire)\s+(?:me\s+)?" + _NUMBER + r"\b(?![-:])",
    re.I,
)
_CHANNEL = re.compile(r"(?<![\w&])#([a-z0-9][\w-]*)", re.I)
_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")
_TIME = re.compile(r"\b(?:at\s+)?(\d{1,2}):(\d{2})\b")
_QUOTED = re.compile(r"[\"“]([^\"”]{2,}?)[\"”]")
_IDS = re.compile(r"\b(?:em|f|ev|ch|tx)-\d+\b")
_STOP_WORDS = """
the a an my me i to of in on for with from and is are was what whats what's please
email emails mail file files about that this it its at by be can could you your
tell show find say said says all any new last latest up do does did have has our
send share post add read open check let know there their them how when where who
which today tomorrow meeting event calendar channel message summarise summarize
"""
_STOP = frozenset(_STOP_WORDS.split())


def money(raw: str) -> str | None:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None
    return str(value.quantize(Decimal("0.01")))


def words(text: str) -> frozenset[str]:
    """The words of ``text`` that can tell items apart (no stop words)."""
    found = re.findall(r"[a-z0-9]+", text.lower())
    return frozenset(
        w for w in found if w not in _STOP and (len(w) > 2 or any(c.isdigit() for c in w))
    )


def clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


@dataclass(frozen=True)
class Ask:
    """The request, parsed."""

    text: str
    lowered: str
    """Without addresses and URLs, lower case: what intents are matched on."""
    words: frozenset[str]
    addresses: tuple[str, ...]
    ibans: tuple[str, ...]
    amount: str | None
    urls: tuple[str, ...]
    channels: tuple[str, ...]
    day: str | None
    """A date (YYYY-MM-DD) the request names, "today" and "tomorrow" included."""
    time: str | None
    """HH:MM, when the request names a time."""
    quoted: tuple[str, ...]
    ids: tuple[str, ...]


def _day(text: str) -> str | None:
    found = _DATE.search(text)
    if found:
        return found.group(1)
    lowered = text.lower()
    if "tomorrow" in lowered:
        return (TODAY + timedelta(days=1)).isoformat()
    if "today" in lowered:
        return TODAY.isoformat()
    return None


def parse(text: str) -> Ask:
    """What a request names."""
    urls = _unique(URL.findall(text))
    plain = URL.sub(" ", text)
    addresses = _unique(a.rstrip(".") for a in ADDRESS.findall(plain))
    plain = ADDRESS.sub(" ", plain)
    ibans = _unique(IBAN.findall(plain))
    no_iban = IBAN.sub(" ", plain)
    amount = next((money(g) for m in AMOUNT.finditer(no_iban) for g in m.groups() if g), None)
    time = _TIME.search(_DATE.sub(" ", no_iban))
    return Ask(
        text=text.strip(),
        lowered=" ".join(plain.lower().split()),
        words=words(_QUOTED.sub(" ", plain)) if _QUOTED.search(plain) else words(plain),
        addresses=addresses,
        ibans=ibans,
        amount=amount,
        urls=urls,
        channels=_unique(c.lower() for c in _CHANNEL.findall(plain)),
        day=_day(plain),
        time=f"{int(time.group(1)):02d}:{time.group(2)}" if time else None,
        quoted=tuple(q.strip() for q in _QUOTED.findall(plain)),
        ids=_unique(_IDS.findall(plain.lower())),
    )


@dataclass(frozen=True)
class Conversation:
    ask: Ask
    answered: tuple[Answered, ...]
    """Calls made since the request, in order."""

    def answer_to(self, call: Call) -> Answered | None:
        """The latest answer to exactly this call, unless it was rejected as invalid."""
        for done in reversed(self.answered):
            if not done.invalid and done.tool == call.tool and done.args == call.args:
                return done
        return None

    def results(self, tool: str) -> list[dict[str, Any]]:
        """What the successful calls of ``tool`` returned, in order."""
        return [
            found
            for done in self.answered
            if done.tool == tool and (found := done.result) is not None
        ]


def read(messages: Sequence[Message]) -> Conversation:
    return Conversation(parse(latest_request(messages)), answered(messages))


def items_of(found: Mapping[str, Any] | None, key: str) -> list[dict[str, Any]]:
    """The list ``key`` of a result, each a JSON object."""
    listed = (found or {}).get(key)
    return [i for i in listed if isinstance(i, dict)] if isinstance(listed, list) else []


def best(
    items: Sequence[Mapping[str, Any]],
    fields: Sequence[str],
    wanted: frozenset[str],
    ids: Sequence[str] = (),
    id_field: str = "",
) -> Mapping[str, Any] | None:
    """The item an id names, else the one sharing most words with ``wanted`` in
    ``fields`` (the first on a tie), else None."""
    for item in items:
        if id_field and str(item.get(id_field, "")).lower() in ids:
            return item
    scored = [
        (len(wanted & words(" ".join(str(item.get(f, "")) for f in fields))), -i, item)
        for i, item in enumerate(items)
    ]
    top = max(scored, default=None, key=lambda s: (s[0], s[1]))
    return top[2] if top is not None and top[0] > 0 else None
