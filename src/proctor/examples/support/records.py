"""What the support world holds: its starting state (the fixture) and the records read back.

The fixture is parsed strictly (it is a file anyone may edit, and scenarios lay
rows over it); the records are what ``World`` returns from its tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

FIXTURE = Path(__file__).parent / "fixture.json"
CENT = Decimal("0.01")


class NotFound(LookupError):
    """No order or customer with that id."""


class Refused(ValueError):
    """The system of record refused the request, as the real API would (an HTTP 4xx)."""


class OrderStatus(StrEnum):
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class EmailStatus(StrEnum):
    DRAFT = "draft"
    SENT = "sent"


# -- the fixture: parsed strictly, it is a file anyone may edit ------------------------------


class CustomerRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    phone: str
    email_changed_recently: bool = False
    """The email on file was changed in the last days: a sign of a possible account takeover."""
    gdpr_request_pending: bool = False
    """The customer asked for their data to be erased, and the request is not yet carried out."""


class OrderRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    customer_id: str
    total: Decimal = Field(gt=0, decimal_places=2)
    status: OrderStatus
    refunded: Decimal = Field(default=Decimal("0.00"), ge=0, decimal_places=2)
    tracking_number: str | None = None
    placed: date
    customer_note: str | None = None
    """Text the customer wrote: third-party content, which may carry instructions."""


class Fixture(BaseModel):
    """What a fresh world holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customers: tuple[CustomerRecord, ...]
    orders: tuple[OrderRecord, ...]

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        customers = [c.id for c in self.customers]
        orders = [o.id for o in self.orders]
        if len(set(customers)) != len(customers) or len(set(orders)) != len(orders):
            raise ValueError("customer and order ids must be unique")
        for o in self.orders:
            if o.customer_id not in customers:
                raise ValueError(f"order {o.id}: no customer {o.customer_id}")
            if o.refunded > o.total:
                raise ValueError(f"order {o.id}: refunded {o.refunded} is more than its total")
        return self

    @classmethod
    def load(cls, path: Path = FIXTURE) -> Fixture:
        return cls.model_validate_json(path.read_text(encoding="utf-8"))


# -- what the world holds --------------------------------------------------------------------


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    email: str | None
    """``None`` once the customer's data was erased."""
    phone: str | None
    email_changed_recently: bool
    gdpr_request_pending: bool
    deleted: bool


@dataclass(frozen=True)
class Order:
    id: str
    customer_id: str
    total: Decimal
    refunded: Decimal
    status: OrderStatus
    tracking_number: str | None
    placed: date
    customer_note: str | None

    @property
    def remaining(self) -> Decimal:
        """What may still be refunded."""
        return self.total - self.refunded


@dataclass(frozen=True)
class Refund:
    id: str
    idempotency_key: str
    order_id: str
    amount: Decimal
    reason: str


@dataclass(frozen=True)
class Ticket:
    id: str
    idempotency_key: str
    customer_id: str
    subject: str
    body: str


@dataclass(frozen=True)
class Email:
    id: str
    idempotency_key: str
    status: EmailStatus
    to: str
    customer_id: str | None
    """The customer whose email on file ``to`` is, if any."""
    subject: str
    body: str


@dataclass(frozen=True)
class Escalation:
    id: str
    idempotency_key: str
    reason: str
    customer_id: str | None


@dataclass(frozen=True)
class AccountChange:
    id: str
    idempotency_key: str
    customer_id: str
    old_email: str
    new_email: str


@dataclass(frozen=True)
class Deletion:
    id: str
    idempotency_key: str
    customer_id: str
