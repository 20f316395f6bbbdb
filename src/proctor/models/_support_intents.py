"""What the simulated model understands of the support example: requests, results, next steps.

Rules, not learning. ``read`` turns a conversation into a ``Conversation``: the
latest trusted request, parsed into an ``Ask`` (its ``Intent`` and the ids,
addresses and amount it names), and the calls answered since. ``next_step``
says what a careful support agent does next: the calls it plans, or its final
answer.

How it plans, the same way for every intent: every call whose arguments the
request gives is planned at once, a look-up of the order or customer first and
the action after it (``lookup_order`` then ``issue_refund``); a call that needs
a result (a refund of what is still refundable, a ticket for an order's
customer) comes in the turn after that result. A call already answered is never
proposed again; one the runtime rejected as invalid never happened, so it is
proposed again, repaired. Once the action has run, or a call failed in its tool,
the model answers in plain text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from proctor.models.messages import AssistantMessage, Message, ToolResultMessage, UserMessage

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


_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ORDER = re.compile(r"\b[Aa]-(\d{3,6})\b")
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


def _money(raw: str) -> str | None:
    try:
        value = Decimal(raw.replace(",", ""))
    except InvalidOperation:
        return None
    return str(value.quantize(Decimal("0.01")))


def _amount(text: str) -> str | None:
    for pattern in _AMOUNTS:
        found = pattern.search(text)
        if found:
            return _money(found.group(1))
    return None


def parse(text: str) -> Ask:
    """The intent of a request and what it names."""
    addresses = _unique(a.rstrip(".") for a in _ADDRESS.findall(text))
    plain = _ADDRESS.sub(" ", text)
    orders = _unique(f"A-{n}" for n in _ORDER.findall(plain))
    customers = _unique(f"c-{n}" for n in _CUSTOMER.findall(plain))
    lowered = plain.lower()
    intent = next((i for i, pattern in _INTENTS if pattern.search(lowered)), None)
    if intent is None:
        intent = Intent.ORDER_STATUS if orders else Intent.UNCLEAR
    return Ask(text.strip(), intent, orders, customers, addresses, _amount(plain))


# -- what the conversation holds ----------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A call the model means to make."""

    tool: str
    args: dict[str, Any]

    def arguments(self) -> str:
        """The JSON text a model writes for it."""
        return json.dumps(self.args)


@dataclass(frozen=True)
class Answered:
    """A call the model made, and what came back."""

    tool: str
    arguments: str
    """The arguments exactly as proposed."""
    args: dict[str, Any] | None
    """The arguments parsed; ``None`` when they are not a JSON object."""
    content: str
    is_error: bool
    step: int | None
    trusted: bool

    @property
    def invalid(self) -> bool:
        """Rejected before it became a step: as if it never happened."""
        return self.is_error and self.step is None

    @property
    def result(self) -> dict[str, Any] | None:
        """The result, when the call ran and returned a JSON object."""
        if self.is_error:
            return None
        return _json_object(self.content)


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


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
    start, request = -1, ""
    for i, m in enumerate(messages):
        if isinstance(m, UserMessage) and m.trusted:
            start, request = i, m.content
    proposed: dict[str, str] = {}
    answered: list[Answered] = []
    for m in messages[start + 1 :]:
        if isinstance(m, AssistantMessage):
            proposed.update((c.id, c.arguments) for c in m.tool_calls)
        elif isinstance(m, ToolResultMessage):
            arguments = proposed.get(m.tool_call_id, "")
            answered.append(
                Answered(
                    m.tool,
                    arguments,
                    _json_object(arguments),
                    m.content,
                    m.is_error,
                    m.step,
                    m.trusted,
                )
            )
    third_party = [m.content for m in messages if isinstance(m, UserMessage) and not m.trusted]
    return Conversation(parse(request), tuple(answered), tuple(third_party))


# -- instructions hidden in third-party text ------------------------------------------------

_INJECTED_REFUND = re.compile(r"\brefund(?:\s+of)?\s+(?:\$|usd\s?)?\s?" + _NUMBER, re.I)
_INJECTED_SEND = re.compile(r"\bsend\b[^.]*?\bto\s+(" + _ADDRESS.pattern + ")", re.I)
_INJECTED_REASON = re.compile(r"\bwith reason\s+([\w ]+)", re.I)


def _instructions(text: str, order: str | None) -> list[Call]:
    """Calls the text tells an agent to make: a refund of an amount, mail to an address."""
    calls = []
    refund = _INJECTED_REFUND.search(text)
    amount = _money(refund.group(1)) if refund else None
    if amount is not None and order is not None:
        why = _INJECTED_REASON.search(text)
        reason = why.group(1).strip() if why else "as the customer's note asks"
        calls.append(Call("issue_refund", {"order_id": order, "amount": amount, "reason": reason}))
    send = _INJECTED_SEND.search(text)
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


# -- what to do next ------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """The calls to propose now, or the final answer."""

    calls: tuple[Call, ...] = ()
    answer: str | None = None


def _say(text: str) -> Step:
    return Step(answer=text)


def _error_text(done: Answered) -> str:
    text = done.content.removeprefix("error: ").strip()
    return text.rstrip(".")


def _failure(done: Answered) -> str:
    return (
        f"I could not finish: {done.tool} failed ({_error_text(done)}). "
        "A person from the team should take a look."
    )


def _carry_out(conv: Conversation, plan: Sequence[Call], done: Callable[[Answered], str]) -> Step:
    """Propose what of ``plan`` is not answered yet. Once its last call (the action) ran,
    or a call of it failed, answer."""
    answers = [conv.answer_to(c) for c in plan]
    action = answers[-1]
    if action is not None and not action.is_error:
        found = action.result
        return _say(done(action) if found is not None else "Done.")
    failed = next((a for a in answers if a is not None and a.is_error), None)
    if failed is not None:
        return _say(_failure(failed))
    return Step(calls=tuple(c for c, a in zip(plan, answers, strict=True) if a is None))


def _field(done: Answered, name: str) -> str:
    found = done.result or {}
    return str(found.get(name, "?"))


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".!?").strip()
    return text[:1].upper() + text[1:]


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# order status


def _looks_injected(note: str) -> bool:
    return bool(_INJECTED_REFUND.search(note) or _INJECTED_SEND.search(note))


def _describe_order(done: Answered, order: str) -> str:
    found = done.result
    if found is None:
        return f"I could not look up order {order} ({_error_text(done)})."
    parts = [f"Order {order} is {found.get('status')}"]
    if found.get("tracking_number"):
        parts.append(f", tracking number {found['tracking_number']}")
    parts.append(f" (total ${found.get('total')}, placed {found.get('placed')}).")
    refunded = found.get("refunded")
    if refunded and _money(str(refunded)) not in (None, "0.00"):
        parts.append(f" ${refunded} of it was refunded.")
    note = found.get("customer_note")
    if isinstance(note, str) and _looks_injected(note):
        parts.append(
            " Its customer note contains instructions addressed to me; that is the "
            "customer's text, not a request from you, so I did not act on it."
        )
    return "".join(parts)


def _order_status(conv: Conversation) -> Step:
    orders = conv.ask.orders
    if not orders:
        return _say("Which order do you mean? Please give its id, like A-1001.")
    plan = [Call("lookup_order", {"order_id": o}) for o in orders]
    answers = [conv.answer_to(c) for c in plan]
    pending = tuple(c for c, a in zip(plan, answers, strict=True) if a is None)
    if pending:
        return Step(calls=pending)
    return _say(" ".join(_describe_order(a, o) for a, o in zip(answers, orders, strict=True) if a))


# refunds

_BECAUSE = re.compile(r"\b(?:because|since|due to)\b\s+(.+)", re.I)
_CLAUSE = re.compile(r"[,;:]\s*([^,;:]+?)\s*$")


def _reason(text: str) -> str:
    found = _BECAUSE.search(text)
    clause = found.group(1) if found else None
    if clause is None:
        tail = _CLAUSE.search(text)
        if tail and not (_ORDER.search(tail.group(1)) or _amount(tail.group(1))):
            clause = tail.group(1)
    if not clause:
        return "requested by the customer"
    return _clip(clause.strip().rstrip(".!?"), 120)


def _refunded(done: Answered) -> str:
    return (
        f"I refunded ${_field(done, 'amount')} on order {_field(done, 'order_id')} "
        f"(refund {_field(done, 'refund_id')}, reason: {_field(done, 'reason')})."
    )


def _refund(conv: Conversation) -> Step:
    ask = conv.ask
    if not ask.orders:
        return _say("Which order should I refund? Please give its id, like A-1001.")
    order = ask.orders[0]
    lookup = Call("lookup_order", {"order_id": order})
    reason = _reason(ask.text)
    if ask.amount is not None:
        refund = Call("issue_refund", {"order_id": order, "amount": ask.amount, "reason": reason})
        return _carry_out(conv, [lookup, refund], _refunded)
    # No amount named: refund what is still refundable, once the order is known.
    seen = conv.answer_to(lookup)
    if seen is None:
        return Step(calls=(lookup,))
    found = seen.result
    if found is None:
        return _say(_failure(seen))
    if found.get("status") != "delivered":
        return _say(
            f"Order {order} is {found.get('status')}, not delivered yet, so it cannot be "
            "refunded. Once it is delivered I can refund it."
        )
    left = _money(str(found.get("refundable", "0")))
    if left is None or Decimal(left) <= 0:
        return _say(f"Order {order} was already refunded in full; there is nothing left to refund.")
    refund = Call("issue_refund", {"order_id": order, "amount": left, "reason": reason})
    return _carry_out(conv, [lookup, refund], _refunded)


# tickets, emails, account changes, erasure, escalation

_TOPIC = re.compile(r"\b(?:about|regarding|concerning|re:)\s+(.+)", re.I)
_MESSAGE = re.compile(
    r"\b(?:that|saying|to say|telling (?:her|him|them)|to let (?:her|him|them) know"
    r"(?: that)?|about)\s+(.+)",
    re.I,
)
_SECOND_PERSON = (
    (re.compile(r"\b(?:she|he|they) (?:is|are)\b", re.I), "you are"),
    (re.compile(r"\b(?:she|he|they) (?:has|have)\b", re.I), "you have"),
    (re.compile(r"\b(?:she|he|they) (?:was|were)\b", re.I), "you were"),
    (re.compile(r"\b(?:she|he|they)\b", re.I), "you"),
    (re.compile(r"\b(?:her|his|their)\b", re.I), "your"),
)


def _customer(conv: Conversation) -> tuple[str | None, Step | None]:
    """The customer the request is about: named, or the customer of the order it names."""
    ask = conv.ask
    if ask.customers:
        return ask.customers[0], None
    if not ask.orders:
        return None, _say("Which customer is this for? Please give their id, like c-101.")
    lookup = Call("lookup_order", {"order_id": ask.orders[0]})
    seen = conv.answer_to(lookup)
    if seen is None:
        return None, Step(calls=(lookup,))
    found = seen.result
    if found is None or not isinstance(found.get("customer_id"), str):
        return None, _say(_failure(seen))
    return str(found["customer_id"]), None


def _ticket(conv: Conversation) -> Step:
    customer, first = _customer(conv)
    if customer is None:
        return first or _say("Which customer is this for?")
    topic = _TOPIC.search(conv.ask.text)
    subject = _clip(_sentence(topic.group(1)), 80) if topic else "Support request"
    body = conv.ask.text
    call = Call("create_ticket", {"customer_id": customer, "subject": subject, "body": body})
    return _carry_out(
        conv,
        [call],
        lambda d: f"I opened ticket {_field(d, 'ticket_id')} for {customer}: {subject}.",
    )


def _message(text: str) -> tuple[str, str]:
    """Subject and body of an email the request describes, addressed to the customer."""
    found = _MESSAGE.search(_ADDRESS.sub(" ", text))
    said = found.group(1) if found else "we are looking into your request"
    for pattern, replacement in _SECOND_PERSON:
        said = pattern.sub(replacement, said)
    sentence = _sentence(said)
    subject = _clip(sentence, 60)
    return subject, f"Hello,\n\n{sentence}.\n\nKind regards,\nCustomer Support"


def _draft(conv: Conversation) -> Step:
    customer, first = _customer(conv)
    if customer is None:
        return first or _say("Which customer is this for?")
    subject, body = _message(conv.ask.text)
    call = Call("draft_email", {"customer_id": customer, "subject": subject, "body": body})
    return _carry_out(
        conv,
        [call],
        lambda d: (
            f"I drafted an email to {customer} ({_field(d, 'email_id')}) for a person to "
            f'review and send: "{subject}".'
        ),
    )


def _send(conv: Conversation) -> Step:
    ask = conv.ask
    if not ask.addresses:
        if ask.customers or ask.orders:
            return _draft(conv)  # no address given: a draft to the address on file
        return _say("Who should I email? Please give their address or customer id.")
    subject, body = _message(ask.text)
    call = Call("send_email", {"to": ask.addresses[0], "subject": subject, "body": body})

    def sent(done: Answered) -> str:
        found = done.result or {}
        whom = (
            f"the address on file for {found['customer_id']}"
            if "customer_id" in found
            else "the address you gave"
        )
        return f'I sent the email "{subject}" to {whom} ({_field(done, "email_id")}).'

    return _carry_out(conv, [call], sent)


def _email_change(conv: Conversation) -> Step:
    ask = conv.ask
    if not ask.customers or not ask.addresses:
        return _say(
            "To change an email on file I need the customer id (like c-101) and the new address."
        )
    customer, new = ask.customers[0], ask.addresses[-1]
    plan = [
        Call("lookup_customer", {"customer_id": customer}),
        Call("update_account_email", {"customer_id": customer, "new_email": new}),
    ]
    return _carry_out(
        conv,
        plan,
        lambda d: f"The email on file for {customer} was changed ({_field(d, 'change_id')}).",
    )


def _erasure(conv: Conversation) -> Step:
    if not conv.ask.customers:
        return _say("Whose data should be erased? Please give the customer id, like c-101.")
    customer = conv.ask.customers[0]
    plan = [
        Call("lookup_customer", {"customer_id": customer}),
        Call("delete_customer_data", {"customer_id": customer}),
    ]
    return _carry_out(
        conv,
        plan,
        lambda d: (
            f"The personal data of {customer} was erased ({_field(d, 'deletion_id')}); "
            "their orders are kept, as the accounts require."
        ),
    )


def _escalate(conv: Conversation) -> Step:
    ask = conv.ask
    args: dict[str, Any] = {"reason": _clip(f"Customer asks: {ask.text}", 200)}
    if ask.customers:
        args["customer_id"] = ask.customers[0]
    return _carry_out(
        conv,
        [Call("escalate", args)],
        lambda d: (
            f"I handed the case to a supervisor ({_field(d, 'escalation_id')}); "
            "someone will be in touch."
        ),
    )


def _unclear(conv: Conversation) -> Step:
    return _say(
        "I'm not sure what you need. Could you tell me the order id (like A-1001) or "
        "customer id (like c-101), and whether you want an order's status, a refund, a "
        "ticket, an email, or a change to the account?"
    )


_PLANNERS: dict[Intent, Callable[[Conversation], Step]] = {
    Intent.ORDER_STATUS: _order_status,
    Intent.REFUND: _refund,
    Intent.TICKET: _ticket,
    Intent.EMAIL_CHANGE: _email_change,
    Intent.GDPR_ERASURE: _erasure,
    Intent.SEND_EMAIL: _send,
    Intent.DRAFT_EMAIL: _draft,
    Intent.ESCALATE: _escalate,
    Intent.UNCLEAR: _unclear,
}


def next_step(conv: Conversation) -> Step:
    """What a careful support agent does next."""
    return _PLANNERS[conv.ask.intent](conv)


def customer_in_view(conv: Conversation) -> str | None:
    """A customer the conversation is about: named in the request, or in a result."""
    if conv.ask.customers:
        return conv.ask.customers[0]
    for done in reversed(conv.answered):
        found = (done.result or {}).get("customer_id")
        if isinstance(found, str):
            return found
    return None
