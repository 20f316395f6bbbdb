"""Deciding an approval through the service, then resuming its run: one path for the API
and the pages, so both behave exactly as ``proctor approvals approve`` does.

Who may decide: a token with the approver or admin role, in its tenant, in one of the
policy roles the request names and the token holds; never the run's requester or agent
(the approval queue refuses those). After the decision the run resumes here when this
server has the app's tools: an agent run continues with the app's model until it ends
or waits again (in the background, so the answer does not wait on a model); a run of
embedded code gets its approved call executed, and its own worker goes on from there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from fastapi.concurrency import run_in_threadpool

from proctor.agent import Agent
from proctor.approvals import REQUESTER, ApprovalRequest, Approver
from proctor.errors import (
    ApprovalError,
    ApprovalNotFound,
    Forbidden,
    NotAllowedToApprove,
    ProctorError,
    RunBusy,
)
from proctor.ids import same_identity
from proctor.runs.views import load_run
from proctor.runtime import Runtime
from proctor.server.schemas import ApprovalOut, DecisionResult
from proctor.server.tokens import ApiToken, Role
from proctor.states import ApprovalStatus, RunState

log = logging.getLogger(__name__)

AgentFactory = Callable[[Runtime], Agent]
"""Builds the agent that continues a resumed agent run (the app's model)."""


@dataclass
class Resumer:
    """What this server can resume: nothing, calls (with the app's tools), or agent runs."""

    tools: bool = False
    agent: AgentFactory | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def continue_agent(self, runtime: Runtime, run_id: str) -> None:
        """Drive the agent run on in the background, to its end or its next wait."""
        factory = self.agent
        assert factory is not None, "only a server with the app's model continues agent runs"

        async def go() -> None:
            agent = factory(runtime)
            try:
                result = await agent.resume(run_id)
                log.info("run %s resumed by the service: %s", run_id, result.state)
            except RunBusy:
                log.info("run %s is held by another worker; it goes on there", run_id)
            except ProctorError as exc:
                log.warning("run %s could not be resumed: %s", run_id, exc)
            finally:
                await agent.aclose()

        task = asyncio.get_running_loop().create_task(go(), name=f"resume {run_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for the agent runs this server is continuing (at shutdown, and in tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)


async def recover_forever(runtime: Runtime, resumer: Resumer) -> None:
    """Every half lease: release what dead workers left (runs whose lease lapsed, their
    model-spend holds); an agent run released goes on here when this server can."""
    every = min(runtime.services.lease.seconds / 2, 30.0)
    while True:
        await asyncio.sleep(every)
        try:
            recovered = await run_in_threadpool(runtime.recover_expired)
        except Exception:  # the store may be down for a moment: try again next time
            log.exception("recovering runs of dead workers failed")
            continue
        for run_id in recovered.runs:
            log.warning("run %s: its worker's lease lapsed; released for another worker", run_id)
            agent_run = await run_in_threadpool(_has_conversation, runtime, run_id)
            if agent_run and resumer.agent is not None and resumer.tools:
                resumer.continue_agent(runtime, run_id)


def shared_roles(request: ApprovalRequest, token: ApiToken) -> list[str]:
    """The policy roles the request may be decided in that the token holds."""
    return [r for r in request.roles if r in token.policy_roles]


def no_policy_role(request: ApprovalRequest, token: ApiToken) -> str:
    """Why ``token`` holds none of the policy roles ``request`` may be decided in."""
    needed = " or ".join(request.roles)
    held = ", ".join(token.policy_roles) or "none"
    why = f"approval {request.id} needs the policy role {needed}; token {token.name} holds {held}"
    if token.role is Role.ADMIN and not token.policy_roles:
        why += (
            ". The admin role manages the service but decides in no policy role of its own: "
            "the policy says who approves"
        )
    return (
        f"{why}. A token that may decide it: proctor tokens create --name NAME "
        f"--role {token.role.value} --policy-role {request.roles[0]}"
    )


def decider_role(request: ApprovalRequest, token: ApiToken, asked: str | None) -> str:
    """The policy role ``token`` decides ``request`` in, or why it may not decide it."""
    allowed = shared_roles(request, token)
    if asked is not None:
        if asked not in request.roles:
            raise NotAllowedToApprove(
                f"approval {request.id} may be decided in the role "
                f"{' or '.join(request.roles)}, not {asked}"
            )
        if asked not in token.policy_roles:
            raise Forbidden(f"token {token.name} does not hold the policy role {asked}")
        return asked
    if not allowed:
        raise Forbidden(no_policy_role(request, token))
    if len(allowed) > 1:
        raise ApprovalError(
            f"token {token.name} may decide approval {request.id} as {' or '.join(allowed)}; "
            "say which in `role`"
        )
    return allowed[0]


def _decide(
    runtime: Runtime,
    approval_id: str,
    token: ApiToken,
    reason: str,
    role: str | None,
    verdict: ApprovalStatus,
) -> ApprovalRequest:
    request = runtime.approvals.get(approval_id)
    if not token.sees(request.tenant):
        raise ApprovalNotFound(f"no approval request {approval_id}")
    if verdict is ApprovalStatus.DENIED and same_identity(token.name, request.requester):
        approver = Approver(token.name, REQUESTER)  # refusing a call of one's own run
    else:
        approver = Approver(token.name, decider_role(request, token, role))
    if verdict is ApprovalStatus.APPROVED:
        return runtime.approvals.approve(approval_id, approver, reason)
    return runtime.approvals.deny(approval_id, approver, reason)


async def decide_and_resume(
    runtime: Runtime,
    resumer: Resumer,
    approval_id: str,
    token: ApiToken,
    reason: str,
    role: str | None,
    verdict: ApprovalStatus,
) -> DecisionResult:
    """Record the decision (audited), then resume the run as far as this server can."""
    request = await run_in_threadpool(_decide, runtime, approval_id, token, reason, role, verdict)
    run_id = request.run_id
    note = ""
    if resumer.tools:
        is_agent_run = await run_in_threadpool(_has_conversation, runtime, run_id)
        if is_agent_run and resumer.agent is not None:
            resumer.continue_agent(runtime, run_id)
            return await _result(
                runtime, request, True, f"run {run_id} resumed here; its agent goes on"
            )
        try:
            run = await runtime.resume(run_id)
        except RunBusy as exc:  # the decision stands; the worker holding the run goes on
            note = f" ({exc})"
        else:
            try:
                outcome = await run.resume_pending()
            finally:
                await run.release()  # the run's own worker continues it from here
            step = f": step {outcome.step} ({outcome.tool}) {outcome.status}" if outcome else ""
            return await _result(runtime, request, True, f"run {run_id} resumed here{step}")
    return await _result(
        runtime,
        request,
        False,
        f"run {run_id} is ready to resume, by a worker with its tools: "
        f"`proctor run --resume {run_id}` or `proctor runs resume {run_id} --app MODULE:APP`"
        + note,
    )


def _has_conversation(runtime: Runtime, run_id: str) -> bool:
    with runtime.store.read() as conn:
        return load_run(conn, run_id, history=False).has_conversation


async def _result(
    runtime: Runtime, request: ApprovalRequest, resumed: bool, message: str
) -> DecisionResult:
    def state() -> RunState:
        with runtime.store.read() as conn:
            return load_run(conn, request.run_id, history=False).state

    return DecisionResult(
        approval=ApprovalOut.of(request),
        run_id=request.run_id,
        resumed=resumed,
        run_state=await run_in_threadpool(state),
        message=message,
    )
