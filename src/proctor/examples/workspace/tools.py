"""The workspace assistant's tools, each declaring honestly whose words its result carries.

Outside content, fields anyone outside the owner's control may write: an email's
subject, body and sender display name; an event's title, description and
location (invitations come from others); a file's name and contents; a channel's
name and its messages; a web page (all of it); a transaction's subject and the
counterparty's name. Identifiers, values a trusted system keeps: ids, sender and
attendee addresses, file owners and grantees, channel members, IBANs on record.

Sinks, arguments saying who or where an effect goes: mail recipients, event
attendees, the person a file is shared with, the channel a message is posted in,
the user added to a channel, the URL fetched (a request carries data out), the
IBAN paid, the forwarding address. Targets, what an effect destroys or changes:
the email, file or event id, the channel a member is added to.

Effect classes: ``destructive`` for deletes; ``irreversible`` for mail out,
payments and security settings; ``write`` for calendar, sharing and chat changes.

Resources give policies what the systems know about a sink or target:
``Recipient`` / ``Grantee`` (``internal``: a colleague's address; ``contact``: in
the address book), ``Payee`` (``paid_before``), ``Channel`` (``external``),
``Invitees`` (``outsiders``: attendees neither colleagues nor contacts), ``Email``
(``spam``), ``File`` (``shared``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any

from proctor.examples.workspace.records import (
    Email,
    Event,
    File,
    Transaction,
    compact_iban,
)
from proctor.examples.workspace.world import World
from proctor.policy import ResourceRef
from proctor.tools import Effect, Reconciliation, Tool, ToolContext, Trust, tool

__all__ = ["TOOL_NAMES", "workspace_tools"]


def _digest(value: str) -> str:
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:16]


def _person(world: World, kind: str, address: str) -> ResourceRef:
    return ResourceRef(
        kind,
        _digest(address),
        {"internal": world.internal(address), "contact": world.contact(address)},
    )


def _outsiders(world: World, addresses: Sequence[str]) -> int:
    return sum(not (world.internal(a) or world.contact(a)) for a in addresses)


def _reconciled(world: World, kind: str) -> Callable[[Any, ToolContext], Reconciliation]:
    def reconcile(args: Any, ctx: ToolContext) -> Reconciliation:
        found = world.effect(kind, ctx.idempotency_key)
        return Reconciliation(False) if found is None else Reconciliation(True, found)

    return reconcile


# -- mail ---------------------------------------------------------------------------------------


def _email_summary(e: Email) -> dict[str, Any]:
    return {
        "email_id": e.id,
        "sender": e.sender,
        "sender_name": e.sender_name,
        "subject": e.subject,
        "received": e.received,
        "unread": e.unread,
    }


def _mail_tools(world: World) -> list[Tool]:
    @tool(
        effect=Effect.READ,
        trust=Trust.TRUSTED,
        untrusted=["emails[].subject", "emails[].sender_name"],
        identifiers=["emails[].sender"],
    )
    async def list_emails(folder: str = "inbox", unread_only: bool = False) -> dict[str, Any]:
        """The emails of a folder ("inbox", "spam" or "sent"), newest first: id, sender,
        the sender's display name, subject, when received, whether unread."""
        found = [e for e in world.all(Email, "emails") if e.folder == folder]
        found = [e for e in found if e.unread or not unread_only]
        found.sort(key=lambda e: e.received, reverse=True)
        return {"folder": folder, "emails": [_email_summary(e) for e in found]}

    @tool(
        effect=Effect.READ,
        trust=Trust.TRUSTED,
        untrusted=["subject", "body", "sender_name"],
        identifiers=["sender", "to"],
    )
    async def read_email(email_id: str) -> dict[str, Any]:
        """One email in full: sender, recipient, subject and body (the sender's words)."""
        e = world.get(Email, "emails", email_id)
        return {**_email_summary(e), "to": e.to, "folder": e.folder, "body": e.body}

    @tool(
        effect=Effect.IRREVERSIBLE,
        resource=lambda a: _person(world, "Recipient", a.to),
        scopes=["mail:send"],
        trust=Trust.TRUSTED,
        untrusted=["subject", "body"],
        sinks=["to"],
    )
    async def send_email(to: str, subject: str, body: str, ctx: ToolContext) -> dict[str, Any]:
        """Send an email now, to one address."""
        return world.send_email(ctx.idempotency_key, to, subject, body)

    def email_ref(a: Any) -> ResourceRef:
        e = world.get(Email, "emails", a.email_id)
        return ResourceRef("Email", e.id, {"spam": e.folder == "spam", "folder": e.folder})

    @tool(
        effect=Effect.DESTRUCTIVE,
        resource=email_ref,
        scopes=["mail:delete"],
        trust=Trust.TRUSTED,
        untrusted=["name"],
        targets=["email_id"],
    )
    async def delete_email(email_id: str, ctx: ToolContext) -> dict[str, Any]:
        """Delete an email for good."""
        return world.delete(ctx.idempotency_key, "emails", email_id)

    @tool(
        effect=Effect.IRREVERSIBLE,
        resource=lambda a: _person(world, "Recipient", a.address),
        scopes=["mail:settings"],
        trust=Trust.TRUSTED,
        sinks=["address"],
    )
    async def set_forwarding(address: str, ctx: ToolContext) -> dict[str, Any]:
        """Forward every incoming email to ``address`` from now on."""
        return world.change_setting(ctx.idempotency_key, "forwarding", address)

    send_email.reconcile(_reconciled(world, "sent"))
    delete_email.reconcile(_reconciled(world, "deleted"))
    set_forwarding.reconcile(_reconciled(world, "settings"))
    return [list_emails, read_email, send_email, delete_email, set_forwarding]


# -- calendar ---------------------------------------------------------------------------------


def _event(e: Event) -> dict[str, Any]:
    return e.model_dump(mode="json", exclude={"id"}) | {"event_id": e.id}


def _calendar_tools(world: World) -> list[Tool]:
    @tool(
        effect=Effect.READ,
        trust=Trust.TRUSTED,
        untrusted=["events[].title", "events[].description", "events[].location"],
        identifiers=["events[].organizer", "events[].attendees"],
    )
    async def list_events(day: str | None = None) -> dict[str, Any]:
        """Calendar events, by start time; only those of ``day`` (YYYY-MM-DD) if given."""
        found = sorted(world.all(Event, "events"), key=lambda e: e.start)
        found = [e for e in found if day is None or e.start.startswith(day)]
        return {"day": day, "events": [_event(e) for e in found]}

    @tool(
        effect=Effect.WRITE,
        resource=lambda a: ResourceRef(
            "Invitees",
            "new-event",
            {"outsiders": _outsiders(world, a.attendees or [])},
        ),
        scopes=["calendar:write"],
        trust=Trust.TRUSTED,
        untrusted=["title"],
        identifiers=["attendees"],
        sinks=["attendees"],
    )
    async def create_event(
        title: str,
        start: str,
        end: str,
        ctx: ToolContext,
        attendees: list[str] | None = None,
        description: str = "",
        location: str = "",
    ) -> dict[str, Any]:
        """Create an event (start and end as YYYY-MM-DDTHH:MM) and invite the attendees."""
        event: dict[str, Any] = {"title": title, "start": start, "end": end}
        event["description"] = description
        event |= {"location": location, "attendees": attendees or []}
        return world.create_event(ctx.idempotency_key, event)

    def change_ref(a: Any) -> ResourceRef:
        e = world.get(Event, "events", a.event_id)
        attrs = {
            "organizer_me": e.organizer == world.owner().email,
            "outsiders": _outsiders(world, a.add_attendees or []),
        }
        return ResourceRef("Event", e.id, attrs)

    @tool(
        effect=Effect.WRITE,
        resource=change_ref,
        scopes=["calendar:write"],
        trust=Trust.TRUSTED,
        identifiers=["added"],
        sinks=["add_attendees"],
        targets=["event_id"],
    )
    async def update_event(
        event_id: str,
        ctx: ToolContext,
        start: str | None = None,
        end: str | None = None,
        add_attendees: list[str] | None = None,
    ) -> dict[str, Any]:
        """Move an event (new start and end) and/or invite more people to it."""
        changes: dict[str, Any] = {"add_attendees": add_attendees or []}
        changes |= {k: v for k, v in (("start", start), ("end", end)) if v is not None}
        return world.update_event(ctx.idempotency_key, event_id, changes)

    create_event.reconcile(_reconciled(world, "events_created"))
    update_event.reconcile(_reconciled(world, "event_changes"))
    return [list_events, create_event, update_event]


# -- files --------------------------------------------------------------------------------------


def _file_tools(world: World) -> list[Tool]:
    @tool(
        effect=Effect.READ,
        trust=Trust.TRUSTED,
        untrusted=["files[].name"],
        identifiers=["files[].owner", "files[].shared_with"],
    )
    async def list_files() -> dict[str, Any]:
        """The files in the cloud drive: id, name, owner, who else has access."""
        return {
            "files": [
                {"file_id": f.id, "name": f.name, "owner": f.owner, "shared_with": f.shared_with}
                for f in world.all(File, "files")
            ]
        }

    @tool(effect=Effect.READ, trust=Trust.TRUSTED, untrusted=["name", "content"])
    async def read_file(file_id: str) -> dict[str, Any]:
        """A file's name and contents."""
        f = world.get(File, "files", file_id)
        return {"file_id": f.id, "name": f.name, "content": f.content}

    def file_ref(a: Any) -> ResourceRef:
        f = world.get(File, "files", a.file_id)
        return ResourceRef("File", f.id, {"shared": bool(f.shared_with)})

    @tool(
        effect=Effect.WRITE,
        resource=lambda a: _person(world, "Grantee", a.to),
        scopes=["files:share"],
        trust=Trust.TRUSTED,
        sinks=["to"],
        targets=["file_id"],
    )
    async def share_file(
        file_id: str, to: str, ctx: ToolContext, permission: str = "view"
    ) -> dict[str, Any]:
        """Give someone (by email address) access to a file: "view" or "edit"."""
        return world.share_file(ctx.idempotency_key, file_id, to, permission)

    @tool(
        effect=Effect.DESTRUCTIVE,
        resource=file_ref,
        scopes=["files:delete"],
        trust=Trust.TRUSTED,
        untrusted=["name"],
        targets=["file_id"],
    )
    async def delete_file(file_id: str, ctx: ToolContext) -> dict[str, Any]:
        """Delete a file for good."""
        return world.delete(ctx.idempotency_key, "files", file_id)

    share_file.reconcile(_reconciled(world, "shares"))
    delete_file.reconcile(_reconciled(world, "deleted"))
    return [list_files, read_file, share_file, delete_file]


# -- chat ---------------------------------------------------------------------------------------


def _chat_tools(world: World) -> list[Tool]:
    @tool(
        effect=Effect.READ,
        trust=Trust.TRUSTED,
        untrusted=["channels[].name"],
        identifiers=["channels[].members"],
    )
    async def list_channels() -> dict[str, Any]:
        """The team chat's channels: id, name, whether shared outside, members."""
        found = world.items("channels")
        return {
            "channels": [
                {"channel_id": c["id"], **{k: c[k] for k in ("name", "external", "members")}}
                for c in found
            ]
        }

    @tool(
        effect=Effect.READ,
        trust=Trust.TRUSTED,
        untrusted=["name", "messages[].text"],
        identifiers=["messages[].author"],
    )
    async def read_channel(channel: str) -> dict[str, Any]:
        """A channel's messages, oldest first; ``channel`` is its name or id."""
        c = world.channel(channel)
        messages = [
            {"author": m["author"], "text": m["text"], "posted": m["posted"]}
            for m in world.items("messages")
            if m["channel_id"] == c.id
        ]
        return {"channel_id": c.id, "name": c.name, "external": c.external, "messages": messages}

    def channel_ref(a: Any) -> ResourceRef:
        c = world.channel(a.channel)
        return ResourceRef("Channel", c.id, {"external": c.external})

    @tool(
        effect=Effect.WRITE,
        resource=channel_ref,
        scopes=["chat:write"],
        trust=Trust.TRUSTED,
        untrusted=["text"],
        sinks=["channel"],
    )
    async def post_message(channel: str, text: str, ctx: ToolContext) -> dict[str, Any]:
        """Post a message in a channel (by name or id); every member reads it."""
        return world.post_message(ctx.idempotency_key, channel, text)

    def member_ref(a: Any) -> ResourceRef:
        c = world.channel(a.channel)
        attrs = {"internal": world.internal(a.user), "contact": world.contact(a.user)}
        return ResourceRef("Membership", f"{c.id}/{_digest(a.user)}", attrs)

    @tool(
        effect=Effect.WRITE,
        resource=member_ref,
        scopes=["chat:admin"],
        trust=Trust.TRUSTED,
        identifiers=["user"],
        sinks=["user"],
        targets=["channel"],
    )
    async def add_user_to_channel(channel: str, user: str, ctx: ToolContext) -> dict[str, Any]:
        """Add someone (by email address) to a channel: they read all of it from then on."""
        return world.add_member(ctx.idempotency_key, channel, user)

    post_message.reconcile(_reconciled(world, "posts"))
    add_user_to_channel.reconcile(_reconciled(world, "members_added"))
    return [list_channels, read_channel, post_message, add_user_to_channel]


# -- web and bank -------------------------------------------------------------------------------


def _web_and_bank_tools(world: World) -> list[Tool]:
    @tool(effect=Effect.READ, scopes=["web:fetch"], trust=Trust.UNTRUSTED, sinks=["url"])
    async def fetch_url(url: str, ctx: ToolContext) -> dict[str, Any]:
        """Fetch a web page (a GET of ``url``) and return its title and text."""
        return world.fetch(ctx.idempotency_key, url)

    @tool(
        effect=Effect.READ,
        trust=Trust.TRUSTED,
        untrusted=["transactions[].subject", "transactions[].counterparty"],
        identifiers=["iban", "transactions[].iban"],
    )
    async def list_transactions() -> dict[str, Any]:
        """The bank account: its IBAN, balance and transactions, newest first (amounts
        positive in, negative out; the subject and name are what the other side wrote)."""
        owner = world.owner()
        found = sorted(world.all(Transaction, "transactions"), key=lambda t: t.date, reverse=True)
        return {
            "iban": owner.iban,
            "balance": str(owner.balance),
            "transactions": [
                t.model_dump(mode="json", exclude={"id"}) | {"transaction_id": t.id} for t in found
            ],
        }

    @tool(
        effect=Effect.IRREVERSIBLE,
        resource=lambda a: ResourceRef(
            "Payee",
            compact_iban(a.iban),
            {"paid_before": world.paid_before(a.iban)},
        ),
        scopes=["bank:pay"],
        trust=Trust.TRUSTED,
        untrusted=["subject"],
        sinks=["iban"],
    )
    async def send_money(
        iban: str, amount: Decimal, subject: str, ctx: ToolContext
    ) -> dict[str, Any]:
        """Transfer ``amount`` (EUR, like "45.00") to an IBAN, with a subject line."""
        return world.send_money(ctx.idempotency_key, iban, amount, subject)

    @tool(
        effect=Effect.IRREVERSIBLE,
        resource=lambda a: ResourceRef("Account", "bank", {}),
        scopes=["bank:settings"],
        trust=Trust.TRUSTED,
        sensitive=["new_password"],
    )
    async def change_password(new_password: str, ctx: ToolContext) -> dict[str, Any]:
        """Change the bank account's password."""
        return world.change_setting(ctx.idempotency_key, "password", new_password)

    fetch_url.reconcile(_reconciled(world, "fetches"))
    send_money.reconcile(_reconciled(world, "payments"))
    change_password.reconcile(_reconciled(world, "settings"))
    return [fetch_url, list_transactions, send_money, change_password]


TOOL_NAMES = (
    "list_emails",
    "read_email",
    "send_email",
    "delete_email",
    "set_forwarding",
    "list_events",
    "create_event",
    "update_event",
    "list_files",
    "read_file",
    "share_file",
    "delete_file",
    "list_channels",
    "read_channel",
    "post_message",
    "add_user_to_channel",
    "fetch_url",
    "list_transactions",
    "send_money",
    "change_password",
)


def workspace_tools(world: World) -> list[Tool]:
    """The assistant's twenty tools over ``world``, in the order of ``TOOL_NAMES``."""
    made = [
        *_mail_tools(world),
        *_calendar_tools(world),
        *_file_tools(world),
        *_chat_tools(world),
        *_web_and_bank_tools(world),
    ]
    by_name = {t.name: t for t in made}
    return [by_name[name] for name in TOOL_NAMES]
