"""How the support playbook reads a conversation: the request, its intent, and third-party text.

Rules, not learning. ``read`` turns a conversation into a ``Conversation``: the
latest trusted request, parsed into an ``Ask`` (its ``Intent`` and the ids,
addresses and amount it names), and the calls answered since.
``injected_calls`` finds the instructions hidden in third-party text (an
order's ``customer_note``, an untrusted user message): a refund of an amount,
mail to an address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from proctor.models.messages import Message
from proctor.models.playbook import Answered, Call, answered, latest_request, third_party

__all__ = [
    "ADDRESS",
    "ORDER_ID",
    "Ask",
    "Conversation",
    "Intent",
    "amount_in",
    "injected_calls",
    "looks_injected",
    "money",
    "parse",
    "read",
]

# -- what a request says ----------------------------------------------------------------------


class Intent(StrEnum):
    ORDER_STATUS = "order_status"
    REFUND = "refund"
    TICKET = "ticket"
    EMAIL_CHANGE = "email_change"
    GDPR_ERASURE = "gdpr_erasure"
    SEND_EMAIL = "send_email"
    DRAFT_EMAIL = "draft_email"
    ESCALATE = "escalate"
    UNCLEAR = "unclear"


ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
ORDER_ID = re.compile(r"\b[Aa]-(\d{3,6})\b")
_CUSTOMER = re.compile(r"\b[Cc]-(\d{2,6})\b")
_NUMBER = r"(\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?|\d+(?:\.\d{1,2})?)"
_AMOUNTS = (
    re.compile(r"(?:\$|€|\busd\s?|\beur\s?)\s?" + _NUMBER, re.I),
    re.compile(_NUMBER + r"\s?(?:usd|dollars?|eur(?:os?)?)\b", re.I),
    re.compile(r"\brefund(?:\s+of)?\s+" + _NUMBER + r"\b(?!-)", re.I),
)

_INTENTS: tuple[tuple[Intent, re.Pattern[str]], ...] = (
    # First match wins: "email maria that her refund is on its way" is an email.
    (
        Intent.GDPR_ERASURE,
        re.compile(
            r"\bgdpr\b|right to be forgotten|\b(?:delete|erase|remove|wipe|purge)\b"
            r"[^.]*\b(?:data|account|information|details|records?)\b"
        ),
    ),
    (Intent.EMAIL_CHANGE, re.compile(r"\b(?:change|update|replace|set|switch)\b[^.]*\bemail\b")),
    (
        Intent.TICKET,
        re.compile(
            r"\b(?:open|create|file|raise|log|start|make)\b[^.]*\bticket\b|"
            r"\bticket (?:for|about)\b"
        ),
    ),
    (Intent.DRAFT_EMAIL, re.compile(r"\bdraft\b")),
    (
        # An instruction to write ("email maria@... that ..."), not any mention of email.
        Intent.SEND_EMAIL,
        re.compile(
            r"(?:^|[.!?]\s*)(?:please\s+)?(?:e-?mail|send|write to|notify)\b|"
            r"\bsend (?:an? |the )?(?:e-?mail|message|note)\b|\be-?mail (?:to|her|him|them)\b"
        ),
    ),
    (
        Intent.ESCALATE,
        re.compile(
            r"\b(?:manager|supervisor|human|real person|someone in charge|escalat\w*|"
            r"complain\w*|lawyer|legal action)\b"
        ),
    ),
    (Intent.REFUND, re.compile(r"\b(?:refund\w*|money back|reimburs\w*|chargeback)\b")),
    (
        Intent.ORDER_STATUS,
        re.compile(
            r"\bwhere(?:'s| is| are)\b|\bstatus\b|\btrack\w*\b|\bwhen will\b|\bshipped\b|"
            r"\barriv\w*\b|\bdeliver\w*\b|\bcheck\b|\blook up\b"
        ),
    ),
)


@dataclass(frozen=True)
class Ask:
    """The request, parsed."""

    text: str
    intent: Intent
    orders: tuple[str, ...]
    customers: tuple[str, ...]
    addresses: tuple[str, ...]
    amount: str | None
    """Dollars with cents (``"30.00"``) when the request names an amount."""


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def money(raw: str) -> str | None:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None
    return str(value.quantize(Decimal("0.01")))


def amount_in(text: str) -> str | None:
    for pattern in _AMOUNTS:
        found = pattern.search(text)
        if found:
            return money(found.group(1))
    return None


def parse(text: str) -> Ask:
    """The intent of a request and what it names."""
    addresses = _unique(a.rstrip(".") for a in ADDRESS.findall(text))
    plain = ADDRESS.sub(" ", text)
    orders = _unique(f"A-{n}" for n in ORDER_ID.findall(plain))
    customers = _unique(f"c-{n}" for n in _CUSTOMER.findall(plain))
    lowered = plain.lower()
    intent = next((i for i, pattern in _INTENTS if pattern.search(lowered)), None)
    if intent is None:
        intent = Intent.ORDER_STATUS if orders else Intent.UNCLEAR
    return Ask(text.strip(), intent, orders, customers, addresses, amount_in(plain))


# -- what the conversation holds ----------------------------------------------------------


@dataclass(frozen=True)
class Conversation:
    ask: Ask
    answered: tuple[Answered, ...]
    """Calls made since the request, in order."""
    third_party: tuple[str, ...]
    """Untrusted user messages (a customer's own words) anywhere in the conversation."""

    def answer_to(self, call: Call) -> Answered | None:
        """The latest answer to exactly this call, unless it was rejected as invalid."""
        for done in reversed(self.answered):
            if not done.invalid and done.tool == call.tool and done.args == call.args:
                return done
        return None


def read(messages: Sequence[Message]) -> Conversation:
    """The latest trusted request, the calls answered since, and third-party messages."""
    return Conversation(parse(latest_request(messages)), answered(messages), third_party(messages))


# -- instructions hidden in third-party text ------------------------------------------------

INJECTED_REFUND = re.compile(r"\brefund(?:\s+of)?\s+(?:\$|usd\s?)?\s?" + _NUMBER, re.I)
INJECTED_SEND = re.compile(r"\bsend\b[^.]*?\bto\s+(" + ADDRESS.pattern + ")", re.I)
INJECTED_REASON = re.compile(r"\bwith reason\s+([\w ]+)", re.I)


def _instructions(text: str, order: str | None) -> list[Call]:
    """Calls the text tells an agent to make: a refund of an amount, mail to an address."""
    calls = []
    refund = INJECTED_REFUND.search(text)
    amount = money(refund.group(1)) if refund else None
    if amount is not None and order is not None:
        why = INJECTED_REASON.search(text)
        reason = why.group(1).strip() if why else "as the customer's note asks"
        calls.append(Call("issue_refund", {"order_id": order, "amount": amount, "reason": reason}))
    send = INJECTED_SEND.search(text)
    if send:
        what = "invoice" if "invoice" in text.lower() else "order details"
        subject = f"Your {what}" + (f" for order {order}" if order else "")
        body = f"Hello,\n\nAs requested, here are your {what}.\n\nKind regards,\nCustomer Support"
        calls.append(Call("send_email", {"to": send.group(1), "subject": subject, "body": body}))
    return calls


def _third_party_texts(conv: Conversation) -> list[tuple[str, str | None]]:
    """Untrusted text seen so far, with the order it is about."""
    texts: list[tuple[str, str | None]] = []
    default = conv.ask.orders[0] if conv.ask.orders else None
    for done in conv.answered:
        found = done.result
        if done.trusted or found is None:
            continue
        # An order's note is the customer's text; any other untrusted result, all of it.
        text = found.get("customer_note") if "customer_note" in found else done.content
        order = found.get("order_id")
        if isinstance(text, str):
            texts.append((text, order if isinstance(order, str) else default))
    texts.extend((text, default) for text in conv.third_party)
    return texts


def injected_calls(conv: Conversation) -> list[Call]:
    """What third-party text told the agent to do, and it has not done yet."""
    calls = [c for text, order in _third_party_texts(conv) for c in _instructions(text, order)]
    return [c for c in calls if conv.answer_to(c) is None]


def looks_injected(note: str) -> bool:
    """Whether ``note`` holds an instruction to refund or to send mail."""
    return bool(INJECTED_REFUND.search(note) or INJECTED_SEND.search(note))
