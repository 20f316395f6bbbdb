"""Separation of duties holds for every spelling of a name: case, spaces around it and
Unicode compatibility forms (full-width letters, ligatures) name the same person."""

from __future__ import annotations

import pytest

from proctor import Approver, NotAllowedToApprove
from proctor.ids import identity_key, same_identity
from proctor.states import ApprovalStatus
from tests.approvals.test_approvals import paused
from tests.shop import Env


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Alice", "nobody approves their own request"),
        (" alice ", "nobody approves their own request"),
        ("ALICE\t", "nobody approves their own request"),
        ("\uff41\uff4c\uff49\uff43\uff45", "nobody approves their own request"),  # full-width
        ("BOT", "an agent never approves"),
        ("\u1d2e\u1d3c\u1d40", "an agent never approves"),  # modifier capitals: NFKC -> BOT
        ("bot\u00a0", "an agent never approves"),  # a no-break space is a space
        ("bo\u200bt", "an agent never approves"),  # an invisible zero-width space
    ],
)
async def test_another_spelling_of_the_requester_or_agent_cannot_approve(
    env: Env, name: str, message: str
) -> None:
    _, approval_id = await paused(env)
    with pytest.raises(NotAllowedToApprove, match=message):
        env.runtime().approvals.approve(approval_id, Approver(name, "supervisor"), "ok")
    assert env.runtime().approvals.get(approval_id).status is ApprovalStatus.PENDING


async def test_an_empty_name_never_approves(env: Env) -> None:
    _, approval_id = await paused(env)
    with pytest.raises(NotAllowedToApprove, match="name"):
        env.runtime().approvals.approve(approval_id, Approver("  ", "supervisor"), "ok")


async def test_someone_else_still_approves(env: Env) -> None:
    _, approval_id = await paused(env)
    request = env.runtime().approvals.approve(approval_id, Approver("Sam", "supervisor"), "ok")
    assert request.status is ApprovalStatus.APPROVED
    assert request.decided_by == "Sam"  # recorded as given


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("customer", "Customer"),
        ("customer", "customer "),
        ("customer", "\uff43\uff55\uff53\uff54\uff4f\uff4d\uff45\uff52"),
        ("stra\u00dfe", "STRASSE"),  # casefold, not lower
        ("\ufb01le", "file"),  # the fi ligature
        ("e\u0301", "\u00e9"),  # combining accent vs precomposed
    ],
)
def test_one_normal_form_for_identities(a: str, b: str) -> None:
    assert identity_key(a) == identity_key(b)
    assert same_identity(a, b)


def test_different_people_stay_different() -> None:
    assert not same_identity("alice", "alicia")
    assert not same_identity("", "")  # nobody is nobody's namesake
    assert not same_identity("al ice", "alice")  # inner spaces are part of a name


async def test_the_requester_refuses_a_call_held_in_their_run_and_the_run_goes_on(
    env: Env,
) -> None:
    from proctor import CallStatus, RunState

    rt = env.runtime()
    run = await rt.start_run(env.spec())
    held = await run.call("refund", {"order_id": "A-1", "amount": "500.00"})
    assert held.status is CallStatus.AWAITING_APPROVAL
    with pytest.raises(NotAllowedToApprove, match="nobody approves their own request"):
        rt.approvals.approve(held.approval_id or "", Approver("alice", "requester"), "mine")

    refused = await run.refuse("I did not ask for that")
    assert refused is not None
    assert refused.status is CallStatus.DENIED
    assert run.state is RunState.RUNNING  # one call: refused, and the run goes on
    request = rt.approvals.get(held.approval_id or "")
    assert (request.decided_by, request.decider_role) == ("alice", "requester")
    assert env.ledger.effects("refund") == []
    assert (await run.call("lookup", {"order_id": "A-1"})).status is CallStatus.EXECUTED
