"""A run while a worker holds it: what it is, what it has learnt, and how it ends.

``LiveRun`` is the state the pipeline stages read and advance: the stored
record, the facts policies see, where argument values came from, and the lease.
Only the recorder writes; this keeps the in-memory view in step with it.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, NoReturn

from proctor.errors import RunFailure, RunTerminated
from proctor.policy import Decision, PolicyBundle, Principal
from proctor.runs import journal
from proctor.runs.facts import RunFacts
from proctor.runs.model import RunRecord, StepRecord
from proctor.runs.plans import PlannedCall
from proctor.runs.provenance import Provenance
from proctor.runs.recorder import Recorder
from proctor.services import Services
from proctor.states import Reason, RunState, StepStatus
from proctor.tool_types import RunView
from proctor.tools import Tool

EXECUTED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED})
"""Steps whose tool ran: they count against the run's tool-call cap."""


class LiveRun:
    """One run in this worker: its record, facts, provenance and lease."""

    def __init__(self, services: Services, recorder: Recorder, record: RunRecord) -> None:
        self.services = services
        self.recorder = recorder
        self.record = record
        self.cursor = 0
        """How many journaled calls this worker has made or replayed."""
        self.principal = Principal(record.spec.agent, record.spec.role, record.spec.tenant)
        self.facts = RunFacts.of(services.tools, record.spec)
        self.provenance = Provenance()
        self.plan: tuple[PlannedCall, ...] | None = None
        """The calls the run committed to, if it did (``Run.commit_plan``)."""
        self.generation = 0
        """Counts what the run learnt that a decision depends on (facts, provenance, mode)."""
        self.previewed: tuple[int, Any, Decision] | None = None
        """The last preview: its generation, proposal and decision."""
        self.invalid_calls: set[str] = set()
        """Call ids whose invalid proposal this worker counted already."""
        self.beside: tuple[str, PolicyBundle] | None = None
        """A release whose bundle decides every call again, log only (a dry run, or the
        stable release beside a canary run): its decisions are recorded, never enforced."""
        self.beside_decision: tuple[str, Decision] | None = None
        """The last decision made beside: the arguments' hash it was made for, and it."""
        for step in record.steps:
            if step.status is StepStatus.SUCCEEDED and step.tool in services.tools:
                self.learn(services.tools.get(step.tool), step, self.whole_result(step))
        # Calls made count against the budget from the journal, so they survive a crash.
        record.usage.tool_calls = sum(s.status in EXECUTED for s in record.steps)

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def tenant(self) -> str:
        return self.record.spec.tenant

    def view(self) -> RunView:
        """The run as a resource hook may see it."""
        spec = self.record.spec
        return RunView(
            self.id,
            spec.tenant,
            spec.workflow,
            spec.agent,
            spec.requester,
            MappingProxyType(dict(self.facts.established)),
        )

    def ensure_live(self) -> None:
        if self.record.state.terminal:
            raise RunTerminated(
                f"run {self.id} already ended {self.record.state} ({self.record.reason}); "
                "start a new run"
            )

    # -- what the run learns from its calls --------------------------------------------

    def learn(self, t: Tool, step: StepRecord, result: Any) -> None:
        """A call of ``t`` succeeded: count it, and note what its result said, and whose
        words those were."""
        self.generation += 1
        self.facts.count(t, step.args)
        self.facts.establish(t.established(result))
        self.provenance.observe(t, result)

    def trust(self, text: str) -> None:
        """Words of whoever the run acts for: values found in them are ``trusted``."""
        self.generation += 1
        self.provenance.requester(text)

    # -- ending --------------------------------------------------------------------------

    async def end(
        self, state: RunState, reason: Reason, detail: str | None, answer: str | None = None
    ) -> None:
        self.ensure_live()
        await self.recorder.end(self.record, state, reason, detail, answer)

    async def fail(self, failure: RunFailure, detail: str) -> NoReturn:
        """End the run ``failed_safe`` with the failure's reason and ``detail``; raise it."""
        await self.end(RunState.FAILED_SAFE, failure.reason, detail)
        raise failure

    def refresh(self) -> None:
        """Take in what an approval decision or expiry changed in the stored run."""
        s = self.services
        with s.store.read() as conn:
            fresh = journal.load_run(conn, self.id)
        record = self.record
        record.state, record.reason, record.paused_s = fresh.state, fresh.reason, fresh.paused_s
        for mine, stored in zip(record.steps, fresh.steps, strict=False):
            mine.status = stored.status

    # -- whole values --------------------------------------------------------------------

    def whole_result(self, step: StepRecord) -> Any:
        """A step's result as the tool returned it: replay and grounding need it whole."""
        if step.sealed_result is None:
            return step.result
        return self.services.sealer.open(step.sealed_result)

    def real_args(self, step: StepRecord) -> dict[str, Any]:
        """The arguments as proposed: unsealed if redaction changed them in storage."""
        with self.services.store.read() as conn:
            sealed = journal.sealed_args_of(conn, self.id, step.idx)
        return dict(self.services.sealer.open(sealed)) if sealed else step.args

    def conversation(self) -> Any:
        """The agent conversation kept with the run, opened; ``None`` if there is none."""
        with self.services.store.read() as conn:
            stored = journal.conversation_of(conn, self.id)
        return None if stored is None else self.services.sealer.open(stored["sealed"])
