"""``Run``: the handle through which an agent's calls are governed.

Every side effect goes through ``Run.call`` (or ``call_json``), which passes
the pipeline in ``proctor.runs.gate``. A run resumed in another process
replays its journal (``proctor.runs.replay``): calls already made return their
recorded outcome instead of running again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from proctor.approvals import ApprovalQueue
from proctor.errors import InvalidAction, RunStateError
from proctor.models import Model, ModelRequest, ModelResponse
from proctor.policy import Decision, PolicyBundle
from proctor.runs import gate, mirror, replay, spend
from proctor.runs.live import LiveRun
from proctor.runs.mirror import CallMirror
from proctor.runs.model import CallOutcome, StepRecord, Usage
from proctor.runs.plans import PlannedCall
from proctor.runs.steps import Proposal
from proctor.states import Mode, Reason, RunState


class Run:
    """A live run in this worker. One task at a time."""

    def __init__(
        self, live: LiveRun, approvals: ApprovalQueue, mirror: CallMirror | None = None
    ) -> None:
        self._live = live
        self._approvals = approvals
        self.mirror = mirror

    # -- what the run is -----------------------------------------------------------------

    @property
    def id(self) -> str:
        return self._live.id

    @property
    def state(self) -> RunState:
        return self._live.record.state

    @property
    def reason(self) -> Reason | None:
        return self._live.record.reason

    @property
    def mode(self) -> Mode:
        return self._live.record.spec.mode

    @property
    def usage(self) -> Usage:
        return self._live.record.usage

    @property
    def steps(self) -> tuple[StepRecord, ...]:
        return tuple(self._live.record.steps)

    @property
    def tenant(self) -> str:
        return self._live.tenant

    @property
    def release_id(self) -> str | None:
        return self._live.record.release  # None for a run opened before any release

    @property
    def policy(self) -> PolicyBundle:
        return self._live.services.policy  # the bundle deciding this run's calls

    @property
    def bundle_version(self) -> str:
        """The version of the policy bundle this worker decides with (the run may have
        started under another; the runs table keeps that one)."""
        return self._live.services.version

    # -- the governed call ---------------------------------------------------------------

    async def call(
        self,
        tool: str,
        args: Mapping[str, Any],
        *,
        reason: str | None = None,
        call_id: str | None = None,
    ) -> CallOutcome:
        """Propose a call with Python values; it runs only if every stage lets it.

        ``call_id``: the caller's own id for this call (a framework's tool call id). The
        same id proposed again, in this process or after a resume in another, returns the
        recorded outcome, or runs the call once its approval is granted: never twice.
        """
        return await mirror.mirrored(
            self.mirror, self, tool, args, self._call(tool, args, reason, call_id)
        )

    async def call_json(
        self,
        tool: str,
        args_json: str | bytes,
        *,
        reason: str | None = None,
        call_id: str | None = None,
    ) -> CallOutcome:
        """Propose a call whose arguments are a JSON object, as a model writes them."""
        return await mirror.mirrored(
            self.mirror, self, tool, args_json, self._call(tool, args_json, reason, call_id)
        )

    def propose(self, tool: str, args: Mapping[str, Any] | str | bytes) -> Proposal:
        """A call checked against its tool, recording nothing: ``submit`` it, or ``preview``
        it first. Raises ``InvalidAction`` (unrecorded) when it does not fit."""
        return gate.proposal(self._live.services, self._live.tenant, tool, args)

    async def preview(self, proposal: Proposal) -> Decision:
        """What policy decides for this call now. Records nothing, runs nothing; a
        ``submit`` of the same call before anything else changes in the run uses it."""
        return await gate.preview(self._live, proposal)

    async def submit(
        self, proposal: Proposal, *, reason: str | None = None, call_id: str | None = None
    ) -> CallOutcome:
        """Propose a call checked already (``propose``) to every stage after validation.
        ``call_id`` (a model's tool call id) is recorded for traces; a resumed run replays
        its journal in order."""
        self._live.ensure_live()
        return await mirror.mirrored(
            self.mirror,
            self,
            proposal.tool.name,
            proposal.args,
            self._governed(proposal, reason, call_id, in_order=True),
        )

    async def _call(
        self,
        tool: str,
        args: Mapping[str, Any] | str | bytes,
        reason: str | None,
        call_id: str | None,
    ) -> CallOutcome:
        live = self._live
        live.ensure_live()
        if call_id is None:
            return await self._governed(await gate.validate(live, tool, args), reason)
        step = self.step_for(call_id)
        if step is not None:
            proposal = gate.proposal(live.services, live.tenant, tool, args)
            return await replay.replay_call(live, self._approvals, step, proposal)
        if call_id in live.invalid_calls:
            proposal = gate.proposal(live.services, live.tenant, tool, args)  # raises again
        else:
            try:
                proposal = await gate.validate(live, tool, args)
            except InvalidAction:
                live.invalid_calls.add(call_id)  # counted once, however often proposed
                raise
        return await self._governed(proposal, reason, call_id)

    def step_for(self, call_id: str) -> StepRecord | None:
        """The journaled step of the call named ``call_id``, if it was made."""
        return next((s for s in reversed(self._live.record.steps) if s.call_id == call_id), None)

    async def _governed(
        self,
        proposal: Proposal,
        reason: str | None,
        call_id: str | None = None,
        *,
        in_order: bool = False,
    ) -> CallOutcome:
        live = self._live
        if (call_id is None or in_order) and live.cursor < len(live.record.steps):
            step = live.record.steps[live.cursor]
            return await replay.replay(live, self._approvals, step, proposal)
        if live.record.state is RunState.AWAITING_APPROVAL:
            raise RunStateError(
                f"run {self.id} is awaiting approval of step {live.cursor - 1}; no new call "
                "runs until it is decided and the run is resumed"
            )
        live.cursor = len(live.record.steps)
        return await gate.governed(live, proposal, reason, call_id)

    async def resume_pending(self) -> CallOutcome | None:
        """Run the step that waited for approval, if it was approved. ``None`` if nothing waits."""
        return await replay.resume_pending(self._live, self._approvals)

    async def refuse(self, reason: str) -> CallOutcome | None:
        """The requester refuses the call this run waits on: it is denied, and the run goes
        on without it, in one call. ``None`` if nothing waits."""
        return await replay.refuse(self._live, self._approvals, reason)

    def seek(self, step: int) -> None:
        """Continue after ``step`` journaled calls instead of replaying them (for code that
        keeps its own state, such as the agent loop)."""
        steps = len(self._live.record.steps)
        if not 0 <= step <= steps:
            raise ValueError(f"run {self.id} has {steps} steps, not {step}")
        self._live.cursor = step

    # -- what the run is told ------------------------------------------------------------

    def trust(self, text: str) -> None:
        """Text from whoever the run acts for (the request): values found in it are trusted.

        From then on an argument found in no trusted text (the request, trusted tools'
        results) and no untrusted one is ``ungrounded``: the model made it up.
        """
        self._live.trust(text)
        if self.mirror is not None:
            self.mirror.told(text, None)

    def note_request(self, text: str) -> None:
        """Keep what the run was asked (redacted) with it, for the pages and traces. The
        agent loop notes its request; code that drives a run itself may note its own."""
        self._live.ensure_live()
        self._live.recorder.request(self._live.record, text)

    def commit_plan(
        self, calls: Sequence[PlannedCall], *, source: str = "code", recorded: bool = False
    ) -> None:
        """Commit the run to these calls, made from the requester's words before it reads
        anything from outside; later calls are compared with them (``context.plan``).
        ``recorded``: this plan is in the run's log already (a resumed run committing it
        again); committing the same plan twice records it once."""
        plan = tuple(calls)
        live = self._live
        if live.plan == plan:
            return
        if not recorded:
            live.recorder.planned(live.record, [c.to_json() for c in plan], source)
        live.plan = plan
        live.generation += 1
        if self.mirror is not None:
            self.mirror.told(None, plan)

    def enter_safe_mode(self, reason: str) -> None:
        """From now on the run is in safe mode; policies see ``context.run.mode == "safe"``."""
        gate.enter_safe_mode(self._live, reason)

    def note_route(self, intent: str, tier: str, model: str, reason: str) -> None:
        """Record how the request was routed: into the audit log with the run."""
        self._live.recorder.routed(self._live.record, intent, tier, model, reason)

    # -- usage ---------------------------------------------------------------------------

    async def ask(self, model: Model, request: ModelRequest) -> ModelResponse:
        """One model call, paid for before it is made (see ``proctor.runs.spend``)."""
        return await spend.ask(self._live, model, request)

    async def charge(self, *, tokens: int = 0, usd: Decimal = Decimal(0)) -> None:
        """Count model usage made outside ``ask`` against the run's budget."""
        if tokens < 0 or usd < 0:
            raise ValueError("usage to charge must not be negative")
        usage = self._live.record.usage
        usage.model_tokens += tokens
        usage.usd += usd
        self._live.recorder.usage(self._live.record)

    def save_conversation(self, conversation: Any) -> None:
        """Keep the agent's conversation with the run, sealed: it holds tool results whole."""
        self._live.recorder.conversation(self._live.record, conversation)

    def load_conversation(self) -> Any:
        return self._live.conversation()

    # -- ending --------------------------------------------------------------------------

    async def release(self) -> None:
        """Let another worker take the run at once, instead of after this worker's lease."""
        if not self.state.terminal:
            self._live.recorder.release(self._live.record)
        await self.settle_mirror()

    async def complete(self, detail: str | None = None, *, answer: str | None = None) -> None:
        """End the run completed; ``answer``, the final answer, is kept redacted."""
        await self._live.end(RunState.COMPLETED, Reason.DONE, detail, answer)
        await self.settle_mirror()

    async def hand_off(self, reason: Reason, detail: str | None = None) -> None:
        await self._live.end(RunState.HANDED_OFF, reason, detail)
        await self.settle_mirror()

    async def fail_safe(self, reason: Reason, detail: str | None = None) -> None:
        await self._live.end(RunState.FAILED_SAFE, reason, detail)
        await self.settle_mirror()

    async def settle_mirror(self) -> None:
        """The run ended or stopped here: a mirror following it compares now."""
        if self.mirror is not None:
            await self.mirror.finish(self)
