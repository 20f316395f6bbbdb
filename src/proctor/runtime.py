"""The runtime: settings, store, policy, tools and the audit log, built once and passed around."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import sqlalchemy as sa

from proctor.app import App
from proctor.approvals import ApprovalQueue
from proctor.audit import AuditLog, SigningKey, VerifyKey, VerifyReport, anchor_at, verify_store
from proctor.budgets import DailyLedger
from proctor.clock import Clock, SystemClock
from proctor.errors import ProctorError
from proctor.ids import new_id
from proctor.models.pricing import PriceTable
from proctor.policy import PolicyBundle
from proctor.policy.versions import record_bundle_version
from proctor.redaction.policy import Redaction
from proctor.redaction.settings import RedactionSettings
from proctor.releases import Monitor, Placement, Releases, ReleaseServing
from proctor.releases.shadow import ShadowKernel, ShadowMirror
from proctor.runs import journal, replay
from proctor.runs.live import LiveRun
from proctor.runs.model import RunRecord, RunSpec
from proctor.runs.recorder import Recorder
from proctor.runs.run import Run
from proctor.runs.trace import stored_spans
from proctor.sealing import Sealer, secret_of
from proctor.services import (
    CallObserver,
    CredentialIssuer,
    Lease,
    Services,
    scoped_credential,
)
from proctor.settings import Settings
from proctor.store import Store
from proctor.telemetry import RunTelemetry, content_capture_wanted, telemetry_from_environment
from proctor.tools import Tool, ToolRegistry

__all__ = [
    "CallObserver",
    "CredentialIssuer",
    "Recovered",
    "Runtime",
    "load_signing_key",
    "scoped_credential",
]

log = logging.getLogger("proctor")


@dataclass(frozen=True)
class Recovered:
    """What ``Runtime.recover_expired`` released."""

    runs: tuple[str, ...]
    """Runs whose worker's lease lapsed, now ready for another worker."""
    holds: int
    """Model-spend reservations of workers that are gone."""


class Runtime:
    """Everything a governed run needs. Build one per process and pass it; no globals."""

    def __init__(
        self,
        *,
        policy: PolicyBundle | Path | str | None,
        tools: Sequence[Tool] | ToolRegistry = (),
        settings: Settings | None = None,
        clock: Clock | None = None,
        observers: Sequence[CallObserver] = (),
        credentials: CredentialIssuer = scoped_credential,
        retry_backoff_s: float = 0.1,
        telemetry: RunTelemetry | Literal["environment"] | None = "environment",
    ) -> None:
        self.settings = settings or Settings()
        bundle = policy if policy is None or isinstance(policy, PolicyBundle) else None
        if policy is not None and bundle is None:
            bundle = PolicyBundle.load(policy)  # type: ignore[arg-type]
        self.key = load_signing_key(self.settings)
        if self.settings.db_url is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
        store = Store(self.settings.database_url)
        clock = clock or SystemClock()
        if bundle is not None:
            # Kept from first use, so evidence can show this version's files later.
            record_bundle_version(store, bundle, clock.now())
        self.redaction = Redaction(
            bundle.settings.redaction if bundle else RedactionSettings(),
            secret_of(self.key.private),
        )
        # Spans of ended runs, over OTLP when the OTEL_* variables ask for it, redacted
        # with each tenant's settings.
        if isinstance(telemetry, str):
            telemetry = telemetry_from_environment(redact=self.redaction.text)
        self.telemetry = telemetry
        self._span_content = telemetry is not None and content_capture_wanted()
        self.services = Services(
            store=store,
            audit=AuditLog(
                self.key,
                clock,
                checkpoint_every=self.settings.checkpoint_every,
                anchor=anchor_at(self.settings.audit_anchor),
            ),
            redaction=self.redaction,
            sealer=Sealer.from_signing_key(self.key.private),
            clock=clock,
            bundle=bundle,
            tools=tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools),
            ledger=DailyLedger(store, clock),
            lease=Lease(worker_id=new_id("wrk"), seconds=self.settings.lease_s),
            observers=tuple(observers),
            credentials=credentials,
            retry_backoff_s=retry_backoff_s,
            run_ended=self.run_ended,
        )
        # A batch of writes takes its tenants' chain heads first, off the event loop.
        store.group_commit.prepare = self.services.audit.lock_heads
        self._recorder = Recorder(self.services)
        self.approvals = ApprovalQueue(self.services, self._recorder)
        self._served: dict[str, tuple[Services, Recorder, ApprovalQueue]] = {}
        if bundle is not None:
            self._served[str(bundle.version)] = (self.services, self._recorder, self.approvals)
        self.releases = Releases(store, self.services.audit, clock)
        self.serving = ReleaseServing(
            self.releases, bundle, self.settings.home, self.settings.releases_refresh_s
        )
        self.monitor = Monitor(self.releases, self.serving, clock)
        self._shadows: dict[str, ShadowKernel] = {}
        self._shadow_store: Store | None = None

    @classmethod
    def for_app(cls, app: App, settings: Settings | None = None, **kwargs: Any) -> Runtime:
        return cls(policy=app.policy, tools=app.tools, settings=settings, **kwargs)

    # The parts most callers reach for, by name.

    @property
    def store(self) -> Store:
        return self.services.store

    @property
    def clock(self) -> Clock:
        return self.services.clock

    @property
    def tools(self) -> ToolRegistry:
        return self.services.tools

    @property
    def audit(self) -> AuditLog:
        return self.services.audit

    @property
    def sealer(self) -> Sealer:
        return self.services.sealer

    @property
    def ledger(self) -> DailyLedger:
        return self.services.ledger

    @property
    def policy(self) -> PolicyBundle:
        """The policy bundle; ``ConfigError`` for a runtime built without one."""
        return self.services.policy

    @property
    def prices(self) -> PriceTable:
        """Built-in prices, with the bundle's ``prices:`` over them."""
        return self.services.prices

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def run_ended(self, run_id: str) -> None:
        """A run has ended, durably: its spans, derived from the store, go to telemetry,
        and a canary's run lets the SLO monitor check."""
        if self.telemetry is not None:
            described = {t.name: t.description for t in self.tools}
            unseal = self.sealer.open if self._span_content else None
            spans = stored_spans(self.store, run_id, tools=described, unseal=unseal)
            self.telemetry.export_run(run_id, spans)
        self.monitor.run_ended(run_id)

    def close(self) -> None:
        if self.telemetry is not None:
            self.telemetry.shutdown()  # flushes queued spans
        self.store.close()
        if self._shadow_store is not None:
            self._shadow_store.close()

    def place(self, spec: RunSpec) -> Placement:
        """Where a new run for ``spec`` goes: the stable release or the canary (sticky by
        tenant and requester), with a shadow or a dry run beside it. Without a stable
        release, the runtime's own bundle."""
        run_id = new_id("run")
        placed = self.serving.place(spec, run_id)
        return placed or Placement(run_id, None, None, self.policy)

    async def start_run(self, spec: RunSpec, *, placement: Placement | None = None) -> Run:
        """Open a run under the release ``place`` chooses; its calls go through ``Run.call``."""
        placed = placement or self.place(spec)
        services, recorder, approvals = self._serve(placed.bundle)
        # Caps the spec leaves open come from the bundle's proctor.yaml.
        budget = spec.budget.filled_from(placed.bundle.settings.budgets.run)
        if budget != spec.budget:
            spec = spec.model_copy(update={"budget": budget})
        lease_until = self.clock.now() + timedelta(seconds=self.services.lease.seconds)
        record = await recorder.open_run(placed.run_id, spec, lease_until, placed.release_id)
        live = LiveRun(services, recorder, record)
        live.beside = placed.beside
        return Run(live, approvals, await self._mirror(placed, spec))

    async def resume(self, run_id: str) -> Run:
        """Take a run over from the store, in this process, and settle what a crash left open.

        Taking over is one conditional write: it fails with ``RunTerminated`` for a run
        that ended and ``RunBusy`` while another worker's lease is live, and it fences
        off every worker that held the run before. Calls already made replay from the
        journal; a step whose outcome was lost is reconciled.
        """
        now, lease = self.clock.now(), self.services.lease
        until = now + timedelta(seconds=lease.seconds)

        def take(conn: sa.Connection) -> RunRecord:
            generation = journal.take(conn, run_id, lease.worker_id, now, until)
            record = journal.load_run(conn, run_id)  # as it is under this worker's lease
            record.lease_generation, record.lease_until = generation, until
            return record

        record = await self.store.transact(take)
        # A run finishes under the release (the bundle) it opened under.
        bundle = self.serving.bundle_of(record.bundle_version) if record.release else None
        services, recorder, approvals = self._serve(bundle or self.policy)
        live = LiveRun(services, recorder, record)
        live.beside = self.serving.beside_of(record.release)
        await replay.recover(live)
        return Run(live, approvals)

    async def claim(self, limit: int) -> list[str]:
        """Up to ``limit`` agent runs ready for a worker (queued, approved, or left by a
        worker that died), taken over under this worker's lease: ``resume`` each here.
        Workers on one PostgreSQL database never claim the same run."""
        now, lease = self.clock.now(), self.services.lease
        until = now + timedelta(seconds=lease.seconds)
        return await self.store.transact(
            lambda conn: journal.claim_ready(conn, lease.worker_id, now, until, limit)
        )

    async def session_run(self, spec: RunSpec) -> Run:
        """The run serving ``spec.session`` (a LangGraph thread, an MCP session) for its
        tenant, taken over here as ``resume`` does; a new run when the session has none
        that is still going."""
        if spec.session is None:
            raise ValueError("session_run needs a spec with a session; use start_run")
        run_id = self.live_run_of(spec.tenant, spec.session)
        if run_id is None:
            return await self.start_run(spec)
        return await self.resume(run_id)

    def live_run_of(self, tenant: str, session: str) -> str | None:
        """The id of the run serving ``session`` for ``tenant`` that has not ended, if any."""
        with self.store.read() as conn:
            return journal.live_run_of(conn, tenant, session)

    def recover_expired(self) -> Recovered:
        """Runs whose worker died (its lease lapsed) become ready for another worker, and
        model spend held by dead workers is released."""
        runs = self._recorder.reclaim_expired()
        holds = self.ledger.release_abandoned(self.clock.now(), self.services.lease.seconds)
        return Recovered(tuple(runs), holds)

    def _serve(self, bundle: PolicyBundle) -> tuple[Services, Recorder, ApprovalQueue]:
        """The kernel parts deciding with ``bundle``: a release's runs decide with its own."""
        version = str(bundle.version)
        found = self._served.get(version)
        if found is None:
            redaction = Redaction(bundle.settings.redaction, secret_of(self.key.private))
            services = replace(self.services, bundle=bundle, redaction=redaction)
            recorder = Recorder(services)
            found = self._served[version] = (services, recorder, ApprovalQueue(services, recorder))
        return found

    async def _mirror(self, placed: Placement, spec: RunSpec) -> ShadowMirror | None:
        """A shadow run following this one, if the run is in the shadow's sample."""
        if placed.shadow is None:
            return None
        candidate, bundle = placed.shadow
        try:
            kernel = self._shadows.get(candidate.id)
            if kernel is None:
                if self._shadow_store is None:
                    self._shadow_store = Store(self.settings.shadow_database_url)
                kernel = ShadowKernel(self._shadow_store, self.key, self.clock, bundle, self.tools)
                self._shadows[candidate.id] = kernel
            return ShadowMirror(self.store, candidate, kernel, await kernel.open(spec))
        except ProctorError as exc:  # a shadow never stops a live run
            log.warning("no shadow run for candidate %s: %s", candidate.id, exc)
            return None

    def verify_audit(
        self, *, tenant: str | None = None, extra_keys: Sequence[VerifyKey] = ()
    ) -> VerifyReport:
        with self.store.read() as conn:
            return verify_store(conn, [self.key.verify_key, *extra_keys], tenant)


def load_signing_key(settings: Settings) -> SigningKey:
    """The configured audit key, or one generated under the proctor home with a warning."""
    if settings.audit_key_file is not None:
        return SigningKey.load(settings.audit_key_file)
    key = SigningKey.load_or_generate(settings.key_path)
    if key.generated:
        log.warning(
            "generated a new audit signing key at %s: checkpoints are signed with it. "
            "Keep it safe and set PROCTOR_AUDIT_KEY_FILE to a managed key in production.",
            settings.key_path,
        )
    return key
