"""The approver's pages and the run pages, over the bundled support application: an
approver sees what they decide, the queue is one line a request, a run page shows what was
asked and answered and where the time went, runs are searched and sorted, budgets shown
against their caps, and two eval reports compared as the release gate decides."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from proctor import RunSpec, Runtime, Settings
from proctor.agent import AgentConfig
from proctor.agent.factory import build_agent
from proctor.budgets import BudgetCaps
from proctor.examples.support import BUNDLE, SYSTEM_PROMPT, SupportPlaybook, World, support_tools
from proctor.runs import Origin
from proctor.runs.model import Usage
from proctor.runs.views import RunCost, RunView
from proctor.server import views
from proctor.server.app import create_app
from proctor.server.tokens import Role, create_token
from proctor.states import Mode, RunState
from proctor.store.tables import audit_entries, audit_payloads
from tests.evals.test_gate import make_report

from .test_pages import BASE, login

NEW_EMAIL = "new.owner@example.net"
TOKENS: dict[str, tuple[Role, tuple[str, ...]]] = {
    "sam": (Role.APPROVER, ("supervisor",)),
    "vera": (Role.VIEWER, ()),
    "clerk": (Role.APPROVER, ("billing",)),
}


@dataclass
class Desk:
    rt: Runtime
    email_change: str
    """A live run's held ``update_account_email``: its ``new_email`` is masked when stored."""
    email_run: str
    eval_refund: str
    """An eval run's held refund."""
    secrets: dict[str, str] = field(default_factory=dict)


def _spec(**overrides: object) -> RunSpec:
    base: dict[str, object] = {
        "agent": "support-agent",
        "role": "support_agent",
        "tenant": "acme",
        "workflow": "support",
        "requester": "customer:c-101",
    }
    return RunSpec.model_validate(base | overrides)


@pytest.fixture
async def desk(tmp_path: Path, db_url: str) -> AsyncIterator[Desk]:
    world = World.create(tmp_path / "world.db")
    rt = Runtime(
        policy=BUNDLE,
        tools=support_tools(world),
        settings=Settings(home=tmp_path / "home", db_url=db_url),
    )
    try:
        live = await rt.start_run(_spec())
        live.note_request(f"Please change the email of c-101 to {NEW_EMAIL}")
        held = await live.call(
            "update_account_email", {"customer_id": "c-101", "new_email": NEW_EMAIL}
        )
        assert held.approval_id is not None
        tried = await rt.start_run(_spec(tenant="globex", origin=Origin.EVAL, workflow="evals"))
        refund = await tried.call(
            "issue_refund", {"order_id": "A-1002", "amount": "400.00", "reason": "sent back"}
        )
        assert refund.approval_id is not None, refund
        d = Desk(rt, held.approval_id, live.id, refund.approval_id)
        for name, (role, policy_roles) in TOKENS.items():
            d.secrets[name], _ = create_token(
                rt.store, name, role, None, rt.clock.now(), policy_roles=policy_roles
            )
        yield d
    finally:
        rt.close()


@asynccontextmanager
async def browser(rt: Runtime, secret: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(rt)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        assert (await login(c, secret)).status_code == 303
        yield c


def _reveals(rt: Runtime) -> list[dict[str, object]]:
    query = (
        sa.select(audit_payloads.c.body)
        .select_from(
            audit_entries.join(
                audit_payloads, audit_payloads.c.entry_id == audit_entries.c.entry_id
            )
        )
        .where(audit_entries.c.kind == "approval.revealed")
    )
    with rt.store.read() as conn:
        return [json.loads(body) for (body,) in conn.execute(query)]


async def test_an_approver_sees_the_values_they_decide_and_the_audit_log_says_so(
    desk: Desk,
) -> None:
    async with browser(desk.rt, desk.secrets["sam"]) as sam:
        queue = await sam.get("/approvals")
        card = await sam.get(f"/approvals/{desk.email_change}")
    assert NEW_EMAIL not in queue.text  # the list keeps the stored, masked form
    assert card.status_code == 200
    assert NEW_EMAIL in card.text.split("The request")[1].split("Why it was held")[0]
    assert "recorded in the audit log" in card.text
    assert ">Approve<" in card.text
    # The customer's request (stored redacted) and why the policy held the call.
    assert "Please change the email of c-101 to" in card.text
    assert "account-email-needs-supervisor" in card.text
    [reveal] = _reveals(desk.rt)
    assert reveal["approval_id"] == desk.email_change
    assert (reveal["revealed_to"], reveal["role"]) == ("sam", "supervisor")
    assert reveal["fields"] == ["new_email"]
    assert desk.rt.verify_audit().ok

    # Everyone else, and every other reader, sees what is stored.
    for name in ("vera", "clerk"):
        async with browser(desk.rt, desk.secrets[name]) as other:
            page = await other.get(f"/approvals/{desk.email_change}")
        assert page.status_code == 200
        assert NEW_EMAIL not in page.text.split("The request")[1]
        assert ">Approve<" not in page.text
    async with browser(desk.rt, desk.secrets["sam"]) as sam:
        run = await sam.get(f"/runs/{desk.email_run}")
        api = await sam.get(
            "/api/v1/approvals", headers={"Authorization": f"Bearer {desk.secrets['sam']}"}
        )
    assert NEW_EMAIL not in run.text.split("Timeline")[1]
    assert NEW_EMAIL not in api.text
    assert len(_reveals(desk.rt)) == 1  # only the approver's own look was revealed


async def test_the_queue_is_a_line_a_request_with_filters_and_no_eval_runs(desk: Desk) -> None:
    async with browser(desk.rt, desk.secrets["sam"]) as sam:

        async def lines(**params: str) -> list[str]:
            page = await sam.get("/approvals", params=params)
            assert page.status_code == 200, page.text
            return re.findall(r'<tr id="approval-(apr_[^"]+)"', page.text)

        default = await sam.get("/approvals")
        assert await lines() == [desk.email_change]
        assert "1 request of eval and demo runs not shown" in default.text
        assert 'id="pending-count" class="count" data-live="/approvals/live"' in default.text
        assert re.search(r'aria-label="pending approvals">1<', default.text)
        assert await lines(tests="1") == [desk.email_change, desk.eval_refund]
        assert await lines(tests="1", tool="issue_refund") == [desk.eval_refund]
        assert await lines(tests="1", tenant="globex") == [desk.eval_refund]
        assert await lines(tests="1", role="supervisor") == [desk.email_change, desk.eval_refund]
        assert await lines(tests="1", role="privacy_officer") == []
        live = await sam.get("/approvals/live", params={"tests": "1", "tool": "issue_refund"})
        everything = await sam.get("/approvals", params={"tests": "1"})
    assert 'data-count="1"' in live.text
    refund_line = everything.text.split(f'id="approval-{desk.eval_refund}"')[1].split("</tr>")[0]
    assert ">400.00<" in refund_line  # the amount
    assert "order_id</span> A-1002" in refund_line  # a key argument
    assert ">globex<" in refund_line
    assert ">supervisor<" in refund_line
    assert ">eval<" in refund_line


async def test_a_run_page_shows_what_was_asked_answered_and_where_the_time_went(
    tmp_path: Path,
) -> None:
    world = World.create(tmp_path / "world.db")
    rt = Runtime(policy=BUNDLE, tools=support_tools(world), settings=Settings(home=tmp_path))
    agent = build_agent(
        rt, "simulated", playbook=SupportPlaybook(), config=AgentConfig(system_prompt=SYSTEM_PROMPT)
    )
    try:
        done = await agent.run("Please open a ticket for order A-1016, it broke", _spec())
        waits = await agent.run("Refund $520 on order A-1002, the customer sent it back", _spec())
        secret, _ = create_token(rt.store, "vera", Role.VIEWER, None, rt.clock.now())
        async with browser(rt, secret) as vera:
            page = await vera.get(f"/runs/{done.run_id}")
            held = await vera.get(f"/runs/{waits.run_id}")
            listed = await vera.get("/runs")
    finally:
        await agent.aclose()
        rt.close()
    assert done.answer
    request = page.text.split('id="run-request">')[1].split("</blockquote>")[0]
    assert request == "Please open a ticket for order A-1016, it broke"
    answer = page.text.split('id="run-answer">')[1].split("</blockquote>")[0]
    assert answer.startswith(done.answer[:30].replace("'", "&#39;"))
    assert "final answer of" not in page.text
    waterfall = page.text.split('<svg id="waterfall"')[1].split("</svg>")[0]
    rows = re.findall(r'<a href="#(step-\d+|model-mc_\w+)"', waterfall)
    assert any(r.startswith("model-") for r in rows)
    assert any(r.startswith("step-") for r in rows)
    # While a run waits: since when and for whom, no zero wait, no dangling detail.
    assert "Waiting since" in held.text
    assert "supervisor" in held.text
    assert "Waited for people" not in held.text
    assert "— step" not in held.text
    assert "Refund $520 on order A-1002" in listed.text  # the runs list's request column


async def test_a_run_that_records_its_release_shows_it() -> None:
    """Runs may carry the release they ran under; the page shows it when they do."""

    @dataclass(frozen=True)
    class Released(RunView):
        release: str | None = None

    now = datetime(2026, 1, 1, tzinfo=UTC)
    base = Released(
        id="run_1",
        tenant="acme",
        workflow="support",
        agent="a",
        role="r",
        requester="q",
        mode=Mode.NORMAL,
        state=RunState.COMPLETED,
        reason=None,
        reason_detail=None,
        bundle_version="b1",
        budget=BudgetCaps(),
        usage=Usage(),
        invalid_actions=0,
        max_invalid_actions=2,
        paused_s=0.0,
        created_at=now,
        updated_at=now,
        ended_at=now,
        purged_at=None,
        has_conversation=False,
        cost=RunCost(),
        release="2026.01-rc2",
    )
    assert views.timeline(base, now).release == "2026.01-rc2"
    assert views.timeline(dataclasses.replace(base, release=None), now).release is None


async def test_runs_are_searched_by_request_and_id_and_sorted(desk: Desk) -> None:
    async with browser(desk.rt, desk.secrets["vera"]) as vera:

        async def shown(**params: str) -> list[str]:
            page = await vera.get("/runs", params=params)
            assert page.status_code == 200, page.text
            return re.findall(
                r'<td data-label="Run" class="id"><a href="/runs/(run_\w+)"', page.text
            )

        everything = await shown()
        assert len(everything) == 2
        assert await shown(q="CHANGE the email") == [desk.email_run]
        assert await shown(q=desk.email_run[-12:]) == [desk.email_run]  # part of the id
        assert await shown(q="100%_") == []  # wildcards are matched as they are
        assert await shown(sort="oldest") == list(reversed(everything))
        assert sorted(await shown(sort="cost")) == sorted(everything)
        assert sorted(await shown(sort="duration")) == sorted(everything)
        bad = await vera.get("/runs", params={"sort": "loudest"})
    assert bad.status_code == 400
    assert "sort by newest, oldest, cost, duration" in bad.text


async def test_costs_show_each_budget_against_its_cap_with_separators(
    tmp_path: Path,
) -> None:
    world = World.create(tmp_path / "world.db")
    rt = Runtime(policy=BUNDLE, tools=support_tools(world), settings=Settings(home=tmp_path))
    agent = build_agent(
        rt, "simulated", playbook=SupportPlaybook(), config=AgentConfig(system_prompt=SYSTEM_PROMPT)
    )
    try:
        await agent.run("Please open a ticket for order A-1016, it broke", _spec())
        secret, _ = create_token(rt.store, "vera", Role.VIEWER, None, rt.clock.now())
        async with browser(rt, secret) as vera:
            page = await vera.get("/costs")
        today = rt.clock.now().date().isoformat()
        used = rt.ledger.usage_on(today)
    finally:
        await agent.aclose()
        rt.close()
    reader = Runtime(policy=None, settings=Settings(home=tmp_path))  # a service without --app
    try:
        async with browser(reader, secret) as vera:
            uncapped = await vera.get("/costs")
    finally:
        reader.close()
    assert uncapped.status_code == 200, uncapped.text
    assert "tenant <strong>acme</strong>" in uncapped.text
    assert "no cap" in uncapped.text
    table = page.text.split('id="budgets"')[1].split("</table>")[0]
    tenant_row = table.split("tenant <strong>acme</strong>")[1].split("</tr>")[0]
    workflow_row = table.split("workflow <strong>acme/support</strong>")[1].split("</tr>")[0]
    assert "$20.00" in tenant_row  # the bundle's "*" caps
    assert "$10.00" in workflow_row
    spent = used["tenant:acme"].usd
    value = float(spent / 20) * 100
    share = "&lt;0.1%" if value < 0.1 else f"{value:.1f}%" if value < 10 else f"{value:.0f}%"
    assert f'<span class="pct">{share}</span>' in tenant_row
    tokens = used["tenant:acme"].tokens
    assert tokens >= 1000
    assert f"{tokens:,}" in tenant_row  # thousands separators
    assert re.search(r"<dd>\d{1,3}(,\d{3})+</dd>", page.text)  # the total tokens


async def test_eval_reports_list_every_scenario_and_compare_as_the_gate_does(
    desk: Desk,
) -> None:
    folder = desk.rt.settings.home / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "before.json").write_text(make_report(failed=0).model_dump_json())
    (folder / "after.json").write_text(make_report(failed=6).model_dump_json())
    async with browser(desk.rt, desk.secrets["vera"]) as vera:
        shown = await vera.get("/evals/after")
        failed = await vera.get("/evals/after", params={"outcome": "failed"})
        compared = await vera.get(
            "/evals/compare", params={"baseline": "before", "candidate": "after"}
        )
        same = await vera.get(
            "/evals/compare", params={"baseline": "before", "candidate": "before"}
        )
        missing = await vera.get("/evals/compare", params={"baseline": "before"})
    total = len(make_report(failed=6).results)
    assert shown.text.count('<td data-label="Result">') == total  # every scenario
    assert failed.text.count('<td data-label="Result">') == 6
    assert "T" not in shown.text.split("written ")[1].split(" UTC")[0]  # a readable time
    assert 'id="gate-verdict"' in compared.text
    assert "The release gate fails the candidate" in compared.text
    assert "success_rate" in compared.text
    assert "The release gate passes the candidate" in same.text
    assert missing.status_code == 400
