"""What the workspace world holds: the starting state (the fixture), parsed strictly.

One person's workspace: their mailbox, calendar, cloud files, team chat, the web
pages a fetch can reach, and their bank account. Every row is an item with an
``id``; scenarios lay rows over the fixture by ``id`` (``Fixture.overlay``).
Which fields hold outside content (an email's body, a channel's name) is not a
property of the data: the tools declare it (``tools.py``).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

__all__ = [
    "COLLECTIONS",
    "FIXTURE",
    "Channel",
    "ChatMessage",
    "Contact",
    "Email",
    "Event",
    "File",
    "Fixture",
    "NotFound",
    "Owner",
    "Page",
    "Refused",
    "Transaction",
    "compact_iban",
    "domain_of",
]

FIXTURE = Path(__file__).parent / "fixture.json"


class NotFound(LookupError):
    """No item with that id (or name)."""


class Refused(ValueError):
    """The service refused the request, as its real API would (an HTTP 4xx)."""


def domain_of(address: str) -> str:
    return address.strip().lower().rpartition("@")[2]


def compact_iban(iban: str) -> str:
    """An IBAN as banks compare them: upper case, without spaces or dashes."""
    return "".join(ch for ch in iban.upper() if ch.isalnum())


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)


class Owner(BaseModel):
    """Whose workspace it is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    email: str
    org_domain: str
    """Addresses at this domain are colleagues: inside the organisation."""
    iban: str
    balance: Decimal = Field(decimal_places=2)
    today: date
    password: str
    """The bank account's password (what ``change_password`` replaces)."""
    forwarding: str | None = None


class Contact(_Row):
    """An entry of the address book: people the owner knows."""

    name: str
    email: str


class Email(_Row):
    folder: Literal["inbox", "spam", "sent"] = "inbox"
    sender: str
    sender_name: str
    """The display name the sender chose: anyone can write anything here."""
    to: str
    subject: str
    body: str
    received: str
    unread: bool = False


class Event(_Row):
    title: str
    start: str
    end: str
    location: str = ""
    description: str = ""
    organizer: str
    attendees: tuple[str, ...] = ()


class File(_Row):
    name: str
    owner: str
    content: str
    shared_with: tuple[str, ...] = ()


class Channel(_Row):
    name: str
    external: bool = False
    """Shared with people outside the organisation (guests, vendors)."""
    members: tuple[str, ...] = ()


class ChatMessage(_Row):
    channel_id: str
    author: str
    text: str
    posted: str


class Transaction(_Row):
    date: date
    counterparty: str
    """The name the other side gave: outside content, like the subject."""
    iban: str
    amount: Decimal = Field(decimal_places=2)
    """Positive: money in; negative: money out."""
    subject: str


class Page(_Row):
    """A web page a fetch can reach; its ``id`` is its URL."""

    title: str
    text: str


COLLECTIONS: dict[str, type[_Row]] = {
    "contacts": Contact,
    "emails": Email,
    "events": Event,
    "files": File,
    "channels": Channel,
    "messages": ChatMessage,
    "transactions": Transaction,
    "pages": Page,
}
"""The fixture's collections of items, each row with an ``id``."""


class Fixture(BaseModel):
    """What a fresh world holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    owner: Owner
    contacts: tuple[Contact, ...] = ()
    emails: tuple[Email, ...] = ()
    events: tuple[Event, ...] = ()
    files: tuple[File, ...] = ()
    channels: tuple[Channel, ...] = ()
    messages: tuple[ChatMessage, ...] = ()
    transactions: tuple[Transaction, ...] = ()
    pages: tuple[Page, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for name in COLLECTIONS:
            ids = [row.id for row in getattr(self, name)]
            if len(set(ids)) != len(ids):
                raise ValueError(f"{name}: ids must be unique")
        channels = {c.id for c in self.channels}
        for m in self.messages:
            if m.channel_id not in channels:
                raise ValueError(f"message {m.id}: no channel {m.channel_id}")
        return self

    @classmethod
    def load(cls, path: Path = FIXTURE) -> Fixture:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def overlay(self, changes: dict[str, list[dict[str, Any]]]) -> Fixture:
        """This fixture with ``changes`` (collection → rows) laid over it: a row whose
        ``id`` exists updates it, any other is added. ``ValueError`` says what is wrong."""
        data: dict[str, Any] = self.model_dump(mode="json")
        for name, rows in changes.items():
            if name == "owner":
                for row in rows:
                    data["owner"].update(row)
                continue
            if name not in COLLECTIONS:
                known = ", ".join(["owner", *COLLECTIONS])
                raise ValueError(f"no collection {name!r} (the collections: {known})")
            existing = {row["id"]: row for row in data[name]}
            for row in rows:
                if "id" not in row:
                    raise ValueError(f"{name}: each row needs an 'id'")
                if row["id"] in existing:
                    existing[row["id"]].update(row)
                else:
                    data[name].append(dict(row))
        try:
            return Fixture.model_validate(data)
        except ValidationError as exc:
            raise ValueError(str(exc)) from None
