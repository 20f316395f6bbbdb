"""The workspace example's systems: mail, calendar, files, chat, the web and a bank, in SQLite.

One small database built from ``fixture.json``: the items of each collection
(emails, events, files, channels, messages, transactions, pages, contacts) as JSON
rows, and one table of effects, what the assistant did: mail ``sent``,
``payments``, ``shares``, ``posts``, ``members_added``, ``deleted`` items,
``events_created``, ``event_changes``, ``settings`` changed and ``fetches`` (a
request to a URL leaves the building even when it only reads). ``World.create``
builds a fresh copy, ``World.open`` opens one (creating it the first time).

Every effect is keyed by the idempotency key the runtime hands each call, as the
real services would be: repeating a request returns the record of the first and
changes nothing. What a real service refuses (an unknown id, a payment above the
balance) raises ``Refused`` or ``NotFound``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from proctor.examples.workspace.records import (
    COLLECTIONS,
    Channel,
    Email,
    Event,
    File,
    Fixture,
    NotFound,
    Owner,
    Page,
    Refused,
    Transaction,
    compact_iban,
    domain_of,
)

__all__ = ["EFFECTS", "World"]

_M = TypeVar("_M", Email, Event, File, Channel, Page, Transaction)

EFFECTS = (
    "sent",
    "payments",
    "shares",
    "posts",
    "members_added",
    "deleted",
    "events_created",
    "event_changes",
    "settings",
    "fetches",
)
"""The kinds of effect the world records, each a table scenarios may check."""

_SCHEMA = """
CREATE TABLE owner (body TEXT NOT NULL);
CREATE TABLE items (kind TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL,
    body TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE TABLE effects (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL,
    body TEXT NOT NULL, UNIQUE (kind, key));
"""


def _check_address(address: str) -> str:
    local, at, domain = address.strip().partition("@")
    if not (local and at and "." in domain and " " not in address.strip()):
        raise Refused(f"{address!r} is not an email address")
    return address.strip()


class World:
    """One workspace: its items and what was done to them."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # -- building ------------------------------------------------------------------------

    @classmethod
    def create(cls, path: Path, fixture: Fixture | None = None) -> World:
        """A fresh world at ``path`` (replacing any there) holding ``fixture`` (default: ours)."""
        fixture = fixture or Fixture.load()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        world = cls(path)
        with world._connect() as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO owner VALUES (?)", (fixture.owner.model_dump_json(),))
            for kind in COLLECTIONS:
                conn.executemany(
                    "INSERT INTO items VALUES (?, ?, ?, ?)",
                    [
                        (kind, row.id, i, row.model_dump_json())
                        for i, row in enumerate(getattr(fixture, kind))
                    ],
                )
        return world

    @classmethod
    def open(cls, path: Path) -> World:
        """The world at ``path``, created from the fixture if there is none yet."""
        return cls(path) if path.exists() else cls.create(path)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    # -- reading -------------------------------------------------------------------------

    def owner(self) -> Owner:
        with self._connect() as conn:
            (body,) = conn.execute("SELECT body FROM owner").fetchone()
        return Owner.model_validate_json(body)

    def items(self, kind: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            found = conn.execute(
                "SELECT body FROM items WHERE kind = ? ORDER BY seq", (kind,)
            ).fetchall()
        return [json.loads(body) for (body,) in found]

    def get(self, model: type[_M], kind: str, item_id: str) -> _M:
        with self._connect() as conn:
            found = conn.execute(
                "SELECT body FROM items WHERE kind = ? AND id = ?", (kind, item_id.strip())
            ).fetchone()
        if found is None:
            raise NotFound(f"no {kind[:-1]} {item_id!r}")
        return model.model_validate_json(found[0])

    def all(self, model: type[_M], kind: str) -> list[_M]:
        return [model.model_validate(row) for row in self.items(kind)]

    def effects(self, kind: str) -> list[dict[str, Any]]:
        with self._connect() as conn:
            found = conn.execute(
                "SELECT body FROM effects WHERE kind = ? ORDER BY seq", (kind,)
            ).fetchall()
        return [json.loads(body) for (body,) in found]

    def effect(self, kind: str, key: str) -> dict[str, Any] | None:
        """The effect made with idempotency key ``key``, if there is one."""
        with self._connect() as conn:
            found = conn.execute(
                "SELECT body FROM effects WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        return None if found is None else dict(json.loads(found[0]))

    def rows(self, table: str) -> list[dict[str, Any]]:
        """A collection's items or an effect kind's records (what ``expect.world`` checks)."""
        if table == "owner":
            return [self.owner().model_dump(mode="json")]
        if table in COLLECTIONS:
            return self.items(table)
        if table in EFFECTS:
            return self.effects(table)
        raise NotFound(f"the workspace world has no table {table!r}")

    # -- facts the policies read ---------------------------------------------------------

    def internal(self, address: str) -> bool:
        """Whether ``address`` is a colleague's (at the organisation's domain)."""
        return domain_of(address) == self.owner().org_domain

    def contact(self, address: str) -> bool:
        wanted = address.strip().lower()
        return any(c["email"].lower() == wanted for c in self.items("contacts"))

    def paid_before(self, iban: str) -> bool:
        wanted = compact_iban(iban)
        return any(
            compact_iban(t.iban) == wanted and t.amount < 0
            for t in self.all(Transaction, "transactions")
        )

    def channel(self, name_or_id: str) -> Channel:
        """A channel by id (``ch-2``) or name, with or without its ``#``."""
        wanted = name_or_id.strip().lstrip("#").lower()
        for c in self.all(Channel, "channels"):
            if wanted in (c.id.lower(), c.name.lower()):
                return c
        raise NotFound(f"no channel {name_or_id!r}")

    # -- effects -------------------------------------------------------------------------

    def _once(
        self, kind: str, key: str, act: Callable[[sqlite3.Connection, int], dict[str, Any]]
    ) -> dict[str, Any]:
        """Do ``act`` and record its effect, unless ``key`` already did: then its record."""
        with self._connect() as conn:
            found = conn.execute(
                "SELECT body FROM effects WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
            if found is not None:
                return dict(json.loads(found[0]))
            (seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM effects").fetchone()
            body = act(conn, seq)
            conn.execute(
                "INSERT INTO effects VALUES (?, ?, ?, ?)", (seq, kind, key, json.dumps(body))
            )
        return body

    @staticmethod
    def _put(conn: sqlite3.Connection, kind: str, item_id: str, body: dict[str, Any]) -> None:
        updated = conn.execute(
            "UPDATE items SET body = ? WHERE kind = ? AND id = ?",
            (json.dumps(body), kind, item_id),
        ).rowcount
        if not updated:
            (seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM items").fetchone()
            conn.execute(
                "INSERT INTO items VALUES (?, ?, ?, ?)", (kind, item_id, seq, json.dumps(body))
            )

    def send_email(self, key: str, to: str, subject: str, body: str) -> dict[str, Any]:
        address = _check_address(to)

        def act(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
            return {"email_id": f"out-{seq}", "to": address, "subject": subject, "body": body}

        return self._once("sent", key, act)

    def delete(self, key: str, kind: str, item_id: str) -> dict[str, Any]:
        if kind == "emails":
            email = self.get(Email, kind, item_id)
            item_id, label = email.id, email.subject
        else:
            file = self.get(File, kind, item_id)
            item_id, label = file.id, file.name

        def act(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
            conn.execute("DELETE FROM items WHERE kind = ? AND id = ?", (kind, item_id))
            return {"kind": kind, "id": item_id, "name": label}

        return self._once("deleted", key, act)

    def create_event(self, key: str, event: dict[str, Any]) -> dict[str, Any]:
        owner = self.owner()
        attendees = [_check_address(a) for a in event.get("attendees", ())]

        def act(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
            made = Event.model_validate(
                {**event, "id": f"ev-n{seq}", "organizer": owner.email, "attendees": attendees}
            )
            self._put(conn, "events", made.id, made.model_dump(mode="json"))
            return {"event_id": made.id, "title": made.title, "attendees": attendees}

        return self._once("events_created", key, act)

    def update_event(self, key: str, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        event = self.get(Event, "events", event_id)
        added = [_check_address(a) for a in changes.pop("add_attendees", ())]

        def act(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
            attendees = [*event.attendees, *(a for a in added if a not in event.attendees)]
            new = event.model_copy(update={**changes, "attendees": tuple(attendees)})
            self._put(conn, "events", event.id, new.model_dump(mode="json"))
            return {"event_id": event.id, **changes, "added": added}

        return self._once("event_changes", key, act)

    def share_file(self, key: str, file_id: str, to: str, permission: str) -> dict[str, Any]:
        file = self.get(File, "files", file_id)
        address = _check_address(to)

        def act(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
            shared = tuple(dict.fromkeys((*file.shared_with, address)))
            new = file.model_copy(update={"shared_with": shared})
            self._put(conn, "files", file.id, new.model_dump(mode="json"))
            return {"file_id": file.id, "to": address, "permission": permission}

        return self._once("shares", key, act)

    def post_message(self, key: str, channel: str, text: str) -> dict[str, Any]:
        found = self.channel(channel)
        author = self.owner().email

        def act(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
            message = {
                "id": f"msg-n{seq}",
                "channel_id": found.id,
                "author": author,
                "text": text,
                "posted": "now",
            }
            self._put(conn, "messages", message["id"], message)
            return {"message_id": message["id"], "channel_id": found.id, "text": text}

        return self._once("posts", key, act)

    def add_member(self, key: str, channel: str, user: str) -> dict[str, Any]:
        found = self.channel(channel)
        address = _check_address(user)

        def act(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
            members = tuple(dict.fromkeys((*found.members, address)))
            new = found.model_copy(update={"members": members})
            self._put(conn, "channels", found.id, new.model_dump(mode="json"))
            return {"channel_id": found.id, "user": address}

        return self._once("members_added", key, act)

    def fetch(self, key: str, url: str) -> dict[str, Any]:
        """A GET of ``url``: recorded (the request reaches its server), then the page."""
        wanted = url.strip()

        def act(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
            found = conn.execute(
                "SELECT body FROM items WHERE kind = 'pages' AND id = ?", (wanted,)
            ).fetchone()
            if found is None:
                return {"url": wanted, "status": 404, "title": "", "text": "Not found."}
            page = Page.model_validate_json(found[0])
            return {"url": wanted, "status": 200, "title": page.title, "text": page.text}

        return self._once("fetches", key, act)

    def send_money(self, key: str, iban: str, amount: Decimal, subject: str) -> dict[str, Any]:
        payee = compact_iban(iban)
        if len(payee) < 15 or not payee[:2].isalpha():
            raise Refused(f"{iban!r} is not an IBAN")
        if amount <= 0:
            raise Refused("the amount must be positive")
        owner = self.owner()
        if amount > owner.balance:
            raise Refused(f"the balance ({owner.balance}) does not cover {amount}")

        def act(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
            balance = owner.balance - amount
            moved = owner.model_copy(update={"balance": balance})
            conn.execute("UPDATE owner SET body = ?", (moved.model_dump_json(),))
            made = Transaction(
                id=f"tx-p{seq}",
                date=owner.today,
                counterparty=payee,
                iban=payee,
                amount=-amount,
                subject=subject,
            )
            self._put(conn, "transactions", made.id, made.model_dump(mode="json"))
            return {
                "transaction_id": made.id,
                "iban": payee,
                "amount": str(amount),
                "subject": subject,
                "balance": str(balance),
            }

        return self._once("payments", key, act)

    def change_setting(self, key: str, setting: str, value: str) -> dict[str, Any]:
        if setting not in ("password", "forwarding"):
            raise Refused(f"no setting {setting!r}")
        if setting == "forwarding":
            value = _check_address(value)
        elif len(value) < 8:
            raise Refused("a password needs at least 8 characters")
        owner = self.owner()

        def act(conn: sqlite3.Connection, seq: int) -> dict[str, Any]:
            changed = owner.model_copy(update={setting: value})
            conn.execute("UPDATE owner SET body = ?", (changed.model_dump_json(),))
            shown = value if setting == "forwarding" else "(changed)"
            return {"change_id": f"set-{seq}", "setting": setting, "value": shown}

        return self._once("settings", key, act)
