"""The support example's system of record: customers, orders, and what the agent did to them.

A small SQLite database built from ``fixture.json``. ``World.create`` builds a
fresh copy, so every scenario and every run can have its own; ``World.open``
opens an existing one (creating it the first time), so a run paused in one
process finds the same world in another. Each method opens its own connection.

Every effect is keyed by the idempotency key the runtime hands each call, as a
payment API or a mail service would: repeating a request returns the record of
the first one and changes nothing. The world refuses what its real counterpart
would refuse (a refund above what is left to refund, a message to a deleted
customer) by raising ``Refused``; the policy bundle is meant to stop such calls
before they get here.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from proctor.examples.support.records import (
    CENT,
    AccountChange,
    Customer,
    Deletion,
    Email,
    EmailStatus,
    Escalation,
    Fixture,
    NotFound,
    Order,
    OrderStatus,
    Refund,
    Refused,
    Ticket,
)

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE customers (id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT, phone TEXT,
    email_changed_recently INTEGER NOT NULL, gdpr_request_pending INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0);
CREATE TABLE orders (id TEXT PRIMARY KEY, customer_id TEXT NOT NULL REFERENCES customers(id),
    total TEXT NOT NULL, refunded TEXT NOT NULL, status TEXT NOT NULL, tracking_number TEXT,
    placed TEXT NOT NULL, customer_note TEXT);
CREATE TABLE refunds (seq INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
    order_id TEXT NOT NULL, amount TEXT NOT NULL, reason TEXT NOT NULL);
CREATE TABLE tickets (seq INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL, subject TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE emails (seq INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL, to_address TEXT NOT NULL, customer_id TEXT, subject TEXT NOT NULL,
    body TEXT NOT NULL);
CREATE TABLE escalations (seq INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL, customer_id TEXT);
CREATE TABLE account_changes (seq INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL, old_email TEXT NOT NULL, new_email TEXT NOT NULL);
CREATE TABLE deletions (seq INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL);
"""


def _customer(row: sqlite3.Row) -> Customer:
    return Customer(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        phone=row["phone"],
        email_changed_recently=bool(row["email_changed_recently"]),
        gdpr_request_pending=bool(row["gdpr_request_pending"]),
        deleted=bool(row["deleted"]),
    )


def _order(row: sqlite3.Row) -> Order:
    return Order(
        id=row["id"],
        customer_id=row["customer_id"],
        total=Decimal(row["total"]),
        refunded=Decimal(row["refunded"]),
        status=OrderStatus(row["status"]),
        tracking_number=row["tracking_number"],
        placed=date.fromisoformat(row["placed"]),
        customer_note=row["customer_note"],
    )


def _refund(row: sqlite3.Row) -> Refund:
    return Refund(
        f"R-{row['seq']:04d}",
        row["idempotency_key"],
        row["order_id"],
        Decimal(row["amount"]),
        row["reason"],
    )


def _ticket(row: sqlite3.Row) -> Ticket:
    return Ticket(
        f"T-{row['seq']:04d}",
        row["idempotency_key"],
        row["customer_id"],
        row["subject"],
        row["body"],
    )


def _email(row: sqlite3.Row) -> Email:
    return Email(
        f"M-{row['seq']:04d}",
        row["idempotency_key"],
        EmailStatus(row["status"]),
        row["to_address"],
        row["customer_id"],
        row["subject"],
        row["body"],
    )


def _escalation(row: sqlite3.Row) -> Escalation:
    return Escalation(
        f"E-{row['seq']:04d}", row["idempotency_key"], row["reason"], row["customer_id"]
    )


def _account_change(row: sqlite3.Row) -> AccountChange:
    return AccountChange(
        f"AC-{row['seq']:04d}",
        row["idempotency_key"],
        row["customer_id"],
        row["old_email"],
        row["new_email"],
    )


def _deletion(row: sqlite3.Row) -> Deletion:
    return Deletion(f"D-{row['seq']:04d}", row["idempotency_key"], row["customer_id"])


def normalize_email(address: str) -> str:
    """How addresses are compared: without surrounding spaces, case-insensitively."""
    return address.strip().lower()


def _check_address(address: str) -> None:
    local, at, domain = address.strip().partition("@")
    if not (local and at and "." in domain and " " not in address.strip()):
        raise Refused(f"{address!r} is not an email address")


class World:
    """The orders-and-customers system of record of one scenario."""

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
        with world._connect(write=True) as conn:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany(
                "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?, 0)",
                [
                    (
                        c.id,
                        c.name,
                        c.email,
                        c.phone,
                        c.email_changed_recently,
                        c.gdpr_request_pending,
                    )
                    for c in fixture.customers
                ],
            )
            conn.executemany(
                "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        o.id,
                        o.customer_id,
                        str(o.total),
                        str(o.refunded),
                        o.status.value,
                        o.tracking_number,
                        o.placed.isoformat(),
                        o.customer_note,
                    )
                    for o in fixture.orders
                ],
            )
        return world

    @classmethod
    def open(cls, path: Path, fixture: Fixture | None = None) -> World:
        """The world at ``path``, created from ``fixture`` if there is none yet."""
        if path.exists():
            return cls(path)
        return cls.create(path, fixture)

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            if write:
                conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if write:
                    conn.execute("ROLLBACK")
                raise
            if write:
                conn.execute("COMMIT")
        finally:
            conn.close()

    def _all(self, query: str, make: Callable[[sqlite3.Row], _T], *params: object) -> list[_T]:
        with self._connect() as conn:
            return [make(row) for row in conn.execute(query, params)]

    def _by_key(self, table: str, key: str, make: Callable[[sqlite3.Row], _T]) -> _T | None:
        with self._connect() as conn:
            return self._keyed(conn, table, key, make)

    @staticmethod
    def _keyed(
        conn: sqlite3.Connection, table: str, key: str, make: Callable[[sqlite3.Row], _T]
    ) -> _T | None:
        row = conn.execute(f"SELECT * FROM {table} WHERE idempotency_key = ?", (key,)).fetchone()
        return None if row is None else make(row)

    # -- reading -------------------------------------------------------------------------

    def order(self, order_id: str) -> Order:
        found = self._all("SELECT * FROM orders WHERE id = ?", _order, order_id)
        if not found:
            raise NotFound(f"no order {order_id!r}; order ids look like 'A-1001'")
        return found[0]

    def orders(self, customer_id: str | None = None) -> list[Order]:
        if customer_id is None:
            return self._all("SELECT * FROM orders ORDER BY id", _order)
        return self._all(
            "SELECT * FROM orders WHERE customer_id = ? ORDER BY id", _order, customer_id
        )

    def customer(self, customer_id: str) -> Customer:
        found = self._all("SELECT * FROM customers WHERE id = ?", _customer, customer_id)
        if not found:
            raise NotFound(f"no customer {customer_id!r}; customer ids look like 'c-101'")
        return found[0]

    def customers(self) -> list[Customer]:
        return self._all("SELECT * FROM customers ORDER BY id", _customer)

    def customer_by_email(self, address: str) -> Customer | None:
        """The customer with ``address`` on file, if any."""
        found = self._all(
            "SELECT * FROM customers WHERE lower(email) = ?", _customer, normalize_email(address)
        )
        return found[0] if found else None

    def refunds(self, order_id: str | None = None) -> list[Refund]:
        if order_id is None:
            return self._all("SELECT * FROM refunds ORDER BY seq", _refund)
        return self._all("SELECT * FROM refunds WHERE order_id = ? ORDER BY seq", _refund, order_id)

    def tickets(self) -> list[Ticket]:
        return self._all("SELECT * FROM tickets ORDER BY seq", _ticket)

    def emails(self, status: EmailStatus | None = None) -> list[Email]:
        if status is None:
            return self._all("SELECT * FROM emails ORDER BY seq", _email)
        return self._all("SELECT * FROM emails WHERE status = ? ORDER BY seq", _email, status.value)

    def escalations(self) -> list[Escalation]:
        return self._all("SELECT * FROM escalations ORDER BY seq", _escalation)

    def account_changes(self) -> list[AccountChange]:
        return self._all("SELECT * FROM account_changes ORDER BY seq", _account_change)

    def deletions(self) -> list[Deletion]:
        return self._all("SELECT * FROM deletions ORDER BY seq", _deletion)

    # -- by idempotency key: what reconcile hooks ask ------------------------------------

    def refund(self, key: str) -> Refund | None:
        return self._by_key("refunds", key, _refund)

    def ticket(self, key: str) -> Ticket | None:
        return self._by_key("tickets", key, _ticket)

    def email(self, key: str) -> Email | None:
        return self._by_key("emails", key, _email)

    def escalation(self, key: str) -> Escalation | None:
        return self._by_key("escalations", key, _escalation)

    def account_change(self, key: str) -> AccountChange | None:
        return self._by_key("account_changes", key, _account_change)

    def deletion(self, key: str) -> Deletion | None:
        return self._by_key("deletions", key, _deletion)

    # -- acting ----------------------------------------------------------------------------

    def issue_refund(self, key: str, order_id: str, amount: Decimal, reason: str) -> Refund:
        """Refund ``amount`` of a delivered order to the card it was paid with."""
        with self._connect(write=True) as conn:
            done = self._keyed(conn, "refunds", key, _refund)
            if done is not None:
                return done
            row = conn.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
            if row is None:
                raise NotFound(f"no order {order_id!r}")
            _check_refund(_order(row), amount)
            cursor = conn.execute(
                "INSERT INTO refunds (idempotency_key, order_id, amount, reason) "
                "VALUES (?, ?, ?, ?)",
                (key, order_id, str(amount), reason),
            )
            refunded = Decimal(row["refunded"]) + amount
            conn.execute("UPDATE orders SET refunded = ? WHERE id = ?", (str(refunded), order_id))
            return Refund(f"R-{cursor.lastrowid:04d}", key, order_id, amount, reason)

    def create_ticket(self, key: str, customer_id: str, subject: str, body: str) -> Ticket:
        with self._connect(write=True) as conn:
            done = self._keyed(conn, "tickets", key, _ticket)
            if done is not None:
                return done
            _live_customer(conn, customer_id)
            cursor = conn.execute(
                "INSERT INTO tickets (idempotency_key, customer_id, subject, body) "
                "VALUES (?, ?, ?, ?)",
                (key, customer_id, subject, body),
            )
            return Ticket(f"T-{cursor.lastrowid:04d}", key, customer_id, subject, body)

    def draft_email(self, key: str, customer_id: str, subject: str, body: str) -> Email:
        """A draft to the customer's address on file, for a person to review and send."""
        with self._connect(write=True) as conn:
            done = self._keyed(conn, "emails", key, _email)
            if done is not None:
                return done
            customer = _live_customer(conn, customer_id)
            assert customer.email is not None, "a customer not erased has an email"
            return self._insert_email(
                conn, key, EmailStatus.DRAFT, customer.email, customer_id, subject, body
            )

    def send_email(self, key: str, to: str, subject: str, body: str) -> Email:
        with self._connect(write=True) as conn:
            done = self._keyed(conn, "emails", key, _email)
            if done is not None:
                return done
            _check_address(to)
            row = conn.execute(
                "SELECT id FROM customers WHERE lower(email) = ?", (normalize_email(to),)
            ).fetchone()
            customer_id = None if row is None else row["id"]
            return self._insert_email(
                conn, key, EmailStatus.SENT, to.strip(), customer_id, subject, body
            )

    @staticmethod
    def _insert_email(
        conn: sqlite3.Connection,
        key: str,
        status: EmailStatus,
        to: str,
        customer_id: str | None,
        subject: str,
        body: str,
    ) -> Email:
        cursor = conn.execute(
            "INSERT INTO emails (idempotency_key, status, to_address, customer_id, subject, body) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (key, status.value, to, customer_id, subject, body),
        )
        return Email(f"M-{cursor.lastrowid:04d}", key, status, to, customer_id, subject, body)

    def escalate(self, key: str, reason: str, customer_id: str | None = None) -> Escalation:
        with self._connect(write=True) as conn:
            done = self._keyed(conn, "escalations", key, _escalation)
            if done is not None:
                return done
            if customer_id is not None:
                _live_customer(conn, customer_id)
            cursor = conn.execute(
                "INSERT INTO escalations (idempotency_key, reason, customer_id) VALUES (?, ?, ?)",
                (key, reason, customer_id),
            )
            return Escalation(f"E-{cursor.lastrowid:04d}", key, reason, customer_id)

    def change_email(self, key: str, customer_id: str, new_email: str) -> AccountChange:
        """Replace the email on file; the account is then flagged as recently changed."""
        with self._connect(write=True) as conn:
            done = self._keyed(conn, "account_changes", key, _account_change)
            if done is not None:
                return done
            customer = _live_customer(conn, customer_id)
            assert customer.email is not None, "a customer not erased has an email"
            _check_address(new_email)
            taken = conn.execute(
                "SELECT id FROM customers WHERE lower(email) = ? AND id != ?",
                (normalize_email(new_email), customer_id),
            ).fetchone()
            if taken is not None:
                raise Refused("that address is on file for another customer")
            conn.execute(
                "UPDATE customers SET email = ?, email_changed_recently = 1 WHERE id = ?",
                (new_email.strip(), customer_id),
            )
            cursor = conn.execute(
                "INSERT INTO account_changes (idempotency_key, customer_id, old_email, new_email) "
                "VALUES (?, ?, ?, ?)",
                (key, customer_id, customer.email, new_email.strip()),
            )
            return AccountChange(
                f"AC-{cursor.lastrowid:04d}", key, customer_id, customer.email, new_email.strip()
            )

    def delete_customer(self, key: str, customer_id: str) -> Deletion:
        """Erase a customer's personal data; orders stay, as the accounts require, without notes."""
        with self._connect(write=True) as conn:
            done = self._keyed(conn, "deletions", key, _deletion)
            if done is not None:
                return done
            _live_customer(conn, customer_id)
            conn.execute(
                "UPDATE customers SET name = '(erased)', email = NULL, phone = NULL, "
                "email_changed_recently = 0, gdpr_request_pending = 0, deleted = 1 WHERE id = ?",
                (customer_id,),
            )
            conn.execute(
                "UPDATE orders SET customer_note = NULL WHERE customer_id = ?", (customer_id,)
            )
            cursor = conn.execute(
                "INSERT INTO deletions (idempotency_key, customer_id) VALUES (?, ?)",
                (key, customer_id),
            )
            return Deletion(f"D-{cursor.lastrowid:04d}", key, customer_id)


def _live_customer(conn: sqlite3.Connection, customer_id: str) -> Customer:
    row = conn.execute("SELECT * FROM customers WHERE id = ?", (customer_id,)).fetchone()
    if row is None:
        raise NotFound(f"no customer {customer_id!r}")
    customer = _customer(row)
    if customer.deleted:
        raise Refused(f"customer {customer_id}'s data was erased")
    return customer


def _check_refund(order: Order, amount: Decimal) -> None:
    """What the payment provider refuses."""
    if amount <= 0:
        raise Refused(f"a refund must be a positive amount, not {amount}")
    if amount != amount.quantize(CENT):
        raise Refused(f"a refund is in whole cents; {amount} has more than two decimals")
    if order.status is not OrderStatus.DELIVERED:
        raise Refused(f"order {order.id} is {order.status.value}: only delivered orders refund")
    if order.remaining <= 0:
        raise Refused(f"order {order.id} is already fully refunded")
    if amount > order.remaining:
        raise Refused(
            f"a refund of {amount} is more than the {order.remaining} still refundable "
            f"on order {order.id}"
        )
