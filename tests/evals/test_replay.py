"""Replaying recorded decisions under a stricter bundle counts what would change."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from proctor import CallStatus
from proctor.cli.evals import policy_replay
from proctor.evals.replay import replay_decisions
from proctor.policy import DecisionEffect, PolicyBundle
from proctor.store.tables import steps
from tests import conftest as kernel
from tests.shop import POLICY, Env, make_tools, write_bundle

STRICTER = """
@id("reads")
permit(principal in Role::"agent", action in Action::"read", resource);

@id("refund-supervised")
@approval("supervisor")
permit(principal in Role::"agent", action == Action::"refund", resource)
when { context.args.amount.lessThanOrEqual(decimal("100.00")) };
"""

ALLOW, APPROVAL, DENY = DecisionEffect.ALLOW, DecisionEffect.REQUIRE_APPROVAL, DecisionEffect.DENY

env = kernel.env  # the kernel tests' fixture: a runtime factory on a fresh store


async def record_runs(env: Env) -> list[str]:
    rt = env.runtime()
    first = await rt.start_run(env.spec())
    calls = [
        ("lookup", {"order_id": "A-1"}, CallStatus.EXECUTED),
        ("refund", {"order_id": "A-1", "amount": "20.00"}, CallStatus.EXECUTED),
        ("send_email", {"to": "a@example.com", "body": "refunded"}, CallStatus.EXECUTED),
        ("refund", {"order_id": "A-1", "amount": "500.00"}, CallStatus.AWAITING_APPROVAL),
    ]
    for tool, args, expected in calls:
        assert (await first.call(tool, args)).status is expected
    second = await rt.start_run(env.spec(requester="bob"))
    assert (await second.call("refund", {"order_id": "B-2", "amount": "30"})).status is (
        CallStatus.EXECUTED
    )
    return [first.id, second.id]


async def test_a_stricter_bundle_shows_its_transitions(env: Env) -> None:
    first, second = await record_runs(env)
    candidate = PolicyBundle.load(write_bundle(env.tmp / "stricter", STRICTER))
    with env.runtimes[0].store.read() as conn:
        report = replay_decisions(conn, candidate, tools=make_tools(env.ledger))
    assert report.steps == 5
    assert report.unchanged == 1  # the lookup
    assert dict(report.transitions) == {
        (ALLOW, APPROVAL): 2,  # both small refunds now need a supervisor
        (ALLOW, DENY): 1,  # the email: no policy permits it any more
        (APPROVAL, DENY): 1,  # the 500 refund is past the supervised limit
    }
    assert dict(report.by_tool["refund"]) == {(ALLOW, APPROVAL): 2, (APPROVAL, DENY): 1}
    assert dict(report.by_tool["send_email"]) == {(ALLOW, DENY): 1}
    example = report.examples[(ALLOW, APPROVAL)][0]
    assert (example.run_id, example.step, example.tool) == (first, 1, "refund")
    assert example.before_policy_ids == ("refund-small",)
    assert example.after_policy_ids == ("refund-supervised",)
    assert report.examples[(ALLOW, APPROVAL)][1].run_id == second
    email = report.examples[(ALLOW, DENY)][0]
    assert email.masked_args  # "to" is sensitive: stored masked
    assert report.unknown_tools == set()
    assert report.resource_policies == ()
    assert not any(c.resource_dependent for c in report.changes)
    assert str(candidate.version) == report.candidate_version


async def test_the_same_bundle_changes_nothing(env: Env) -> None:
    await record_runs(env)
    same = PolicyBundle.load(write_bundle(env.tmp / "same", POLICY))
    with env.runtimes[0].store.read() as conn:
        report = replay_decisions(conn, same, tools=make_tools(env.ledger))
    assert (report.steps, report.unchanged, report.changes) == (5, 5, [])


async def test_run_facts_are_rebuilt_from_earlier_steps(env: Env) -> None:
    await record_runs(env)
    capped = POLICY + (
        '\n@id("one-refund-per-run")\nforbid(principal, action == Action::"refund", resource)\n'
        "when { context.run.calls_by_tool.refund >= 1 };\n"
    )
    bundle = PolicyBundle.load(write_bundle(env.tmp / "capped", capped))
    with env.runtimes[0].store.read() as conn:
        report = replay_decisions(conn, bundle, tools=make_tools(env.ledger))
    assert dict(report.transitions) == {(APPROVAL, DENY): 1}  # only the first run's second refund
    assert report.changes[0].after_policy_ids == ("one-refund-per-run",)


async def test_since_and_unknown_tools(env: Env) -> None:
    await record_runs(env)
    same = PolicyBundle.load(write_bundle(env.tmp / "same", POLICY))
    with env.runtimes[0].store.read() as conn:
        later = replay_decisions(conn, same, since=env.clock.now() + timedelta(seconds=1))
        blind = replay_decisions(conn, same)
    assert later.steps == 0
    assert blind.unknown_tools == {"lookup", "refund", "send_email"}
    # Without the tools, effect classes are unknown: the read permit no longer matches.
    assert blind.transitions[(ALLOW, DENY)] >= 1


GUARDED = POLICY + (
    '\n@id("delivered-only")\nforbid(principal, action == Action::"refund", resource)\n'
    'unless { resource has status && resource.status == "delivered" };\n'
)


async def test_decisions_are_replayed_on_what_they_were_decided_on(env: Env) -> None:
    await record_runs(env)
    unchanged = PolicyBundle.load(env.bundle)
    guarded = PolicyBundle.load(write_bundle(env.tmp / "guarded", GUARDED))
    with env.runtimes[0].store.read() as conn:
        same = replay_decisions(conn, unchanged, tools=make_tools(env.ledger))
        report = replay_decisions(conn, guarded, tools=make_tools(env.ledger))
    assert (same.steps, same.changes) == (5, [])
    # The orders were delivered when the refunds were decided: the recorded resource says so.
    assert [c for c in report.changes if c.tool == "refund"] == []


async def test_policies_reading_the_resource_are_flagged_for_decisions_without_inputs(
    env: Env,
) -> None:
    await record_runs(env)
    with env.runtimes[0].store.write() as conn:  # as an older proctor stored them
        for run_id, idx, decision in conn.execute(
            sa.select(steps.c.run_id, steps.c.idx, steps.c.decision)
        ).all():
            older = {k: v for k, v in decision.items() if k != "inputs"}
            conn.execute(
                sa.update(steps)
                .where(steps.c.run_id == run_id, steps.c.idx == idx)
                .values(decision=older)
            )
    bundle = PolicyBundle.load(write_bundle(env.tmp / "guarded", GUARDED))
    with env.runtimes[0].store.read() as conn:
        report = replay_decisions(conn, bundle, tools=make_tools(env.ledger))
    assert report.resource_policies == ("delivered-only",)
    refunds = [c for c in report.changes if c.tool == "refund"]
    assert refunds
    assert all(c.resource_dependent for c in refunds)
    assert report.uncertain == report.changes
    assert any("resource" in limit for limit in report.limits)


def commands() -> typer.Typer:
    """The commands as `proctor` registers them."""
    app, policy = typer.Typer(), typer.Typer()
    policy.command("replay")(policy_replay)
    app.add_typer(policy, name="policy")
    return app


async def test_cli_policy_replay(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    await record_runs(env)
    monkeypatch.setenv("PROCTOR_HOME", str(env.tmp / "home"))
    monkeypatch.setenv("PROCTOR_DB_URL", env.db_url)
    monkeypatch.setenv("COLUMNS", "250")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("PROCTOR_APP", raising=False)
    bundle = write_bundle(env.tmp / "stricter", STRICTER)
    result = CliRunner().invoke(commands(), ["policy", "replay", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "Replayed 5 recorded decision(s)" in result.stdout
    assert "require_approval" in result.stdout
    assert "Tools not known without --app" in result.stdout
    assert "Limits of a replay" in result.stdout
    later = (env.clock.now() + timedelta(days=1)).strftime("%Y-%m-%d")
    result = CliRunner().invoke(commands(), ["policy", "replay", str(bundle), "--since", later])
    assert "Replayed 0 recorded decision(s)" in result.stdout
    missing = CliRunner().invoke(commands(), ["policy", "replay", str(env.tmp / "nope")])
    assert missing.exit_code == 2


async def test_a_call_whose_resource_could_not_be_looked_up_replays_unchanged(env: Env) -> None:
    from proctor import Effect, ResourceRef, tool
    from proctor.testing import TestEnvironment

    def missing(args: object) -> ResourceRef:
        raise LookupError("no such order")

    @tool(effect=Effect.READ, resource=missing)
    def lookup(order_id: str) -> str:
        """A look-up whose resource is gone."""
        return order_id

    async with TestEnvironment(POLICY, tools=[lookup]) as kit:
        run = await kit.start_run()
        denied = await run.call("lookup", {"order_id": "A-404"})
        assert denied.status is CallStatus.DENIED
        with kit.runtime.store.read() as conn:
            report = replay_decisions(conn, PolicyBundle.load(kit.bundle), tools=[lookup])
    assert (report.steps, report.unchanged, report.changes) == (1, 1, [])
