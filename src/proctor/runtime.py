"""The runtime: settings, store, policy, tools and the audit log, built once and passed around."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol

from proctor.app import App
from proctor.approvals import ApprovalQueue
from proctor.audit import AuditLog, SigningKey, VerifyKey, VerifyReport, verify_store
from proctor.audit.events import RunOpened
from proctor.budgets import DailyLedger
from proctor.clock import Clock, SystemClock
from proctor.errors import ConfigError, RunTerminated
from proctor.ids import new_id
from proctor.models.pricing import PriceTable
from proctor.policy import PolicyBundle
from proctor.policy.versions import record_bundle_version
from proctor.redaction.policy import Redaction
from proctor.redaction.settings import RedactionSettings
from proctor.runs import journal
from proctor.runs.model import RunSpec
from proctor.runs.run import Run
from proctor.sealing import Sealer, secret_of
from proctor.settings import Settings
from proctor.store import Store
from proctor.telemetry import RunTelemetry, telemetry_from_environment
from proctor.tools import Credential, Tool, ToolRegistry

log = logging.getLogger("proctor")


class CallObserver(Protocol):
    """Sees each governed call pass its durable points (tracing, tests that crash on purpose)."""

    def after_intent(self, run_id: str, step: int, tool: str) -> None: ...

    def after_execute(self, run_id: str, step: int, tool: str) -> None: ...


CredentialIssuer = Callable[[Tool, str, str], Credential]


def scoped_credential(t: Tool, run_id: str, tenant: str) -> Credential:
    """The default issuer: a credential that names just the tool's declared scopes."""
    return Credential(scopes=t.scopes)


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
        self.clock: Clock = clock or SystemClock()
        if policy is None or isinstance(policy, PolicyBundle):
            self._policy = policy
        else:
            self._policy = PolicyBundle.load(policy)
        self.tools = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.key = load_signing_key(self.settings)
        self.sealer = Sealer.from_signing_key(self.key.private)
        if self.settings.db_url is None:
            self.settings.home.mkdir(parents=True, exist_ok=True)
        self.store = Store(self.settings.database_url)
        if self._policy is not None:
            # Kept from first use, so evidence can show this version's files later.
            record_bundle_version(self.store, self._policy, self.clock.now())
        self.redaction = Redaction(
            self._policy.settings.redaction if self._policy else RedactionSettings(),
            secret_of(self.key.private),
        )
        self.audit = AuditLog(
            self.key,
            self.clock,
            checkpoint_every=self.settings.checkpoint_every,
            redact=self.redaction.value,
        )
        self.approvals = ApprovalQueue(self)
        self.ledger = DailyLedger(self.store)
        self.observers = tuple(observers)
        self.credentials = credentials
        self.retry_backoff_s = retry_backoff_s
        self.lease_s = self.settings.lease_s
        self.worker_id = new_id("wrk")
        # Spans of ended runs, over OTLP when the OTEL_* variables ask for it, redacted
        # with each tenant's settings.
        if isinstance(telemetry, str):
            telemetry = telemetry_from_environment(redact=self.redaction.text)
        self.telemetry = telemetry

    @classmethod
    def for_app(cls, app: App, settings: Settings | None = None, **kwargs: Any) -> Runtime:
        return cls(policy=app.policy, tools=app.tools, settings=settings, **kwargs)

    @property
    def policy(self) -> PolicyBundle:
        if self._policy is None:
            raise ConfigError(
                "this runtime has no policy bundle, so it cannot run calls; "
                "give it one (or an app: PROCTOR_APP=module:app)"
            )
        return self._policy

    @functools.cached_property
    def prices(self) -> PriceTable:
        """Built-in prices, with the bundle's ``prices:`` over them."""
        return PriceTable(self.policy.settings.prices)

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
        """A run has ended, durably: its spans, derived from the store, go to telemetry."""
        if self.telemetry is not None:
            from proctor.runs.trace import stored_spans

            self.telemetry.export_run(run_id, stored_spans(self.store, run_id))

    def close(self) -> None:
        if self.telemetry is not None:
            self.telemetry.shutdown()  # flushes queued spans
        self.store.close()

    async def start_run(self, spec: RunSpec) -> Run:
        """Open a run; its calls go through ``Run.call``."""
        # Caps the spec leaves open come from the bundle's proctor.yaml.
        budget = spec.budget.filled_from(self.policy.settings.budgets.run)
        if budget != spec.budget:
            spec = spec.model_copy(update={"budget": budget})
        now = self.clock.now()
        run_id = new_id("run")
        lease_until = now + timedelta(seconds=self.lease_s)
        version = str(self.policy.version)
        with self.store.write() as conn:
            journal.insert_run(conn, run_id, spec, version, now, self.worker_id, lease_until)
            self.audit.append(
                conn,
                spec.tenant,
                RunOpened(
                    spec.agent,
                    spec.role,
                    spec.requester,
                    spec.workflow,
                    spec.mode.value,
                    spec.budget.model_dump(mode="json"),
                ),
                run_id=run_id,
                step=None,
                bundle_version=version,
            )
            record = journal.load_run(conn, run_id)
        return Run(self, record, lease_until=lease_until)

    async def resume(self, run_id: str) -> Run:
        """Take a run over from the store, in this process, and settle what a crash left open.

        Calls already made replay from the journal; a step whose outcome was lost
        is reconciled. Raises ``RunTerminated`` for a run that already ended.
        """
        now = self.clock.now()
        with self.store.write() as conn:
            record = journal.load_run(conn, run_id)
            if record.state.terminal:
                raise RunTerminated(
                    f"run {run_id} already ended {record.state} ({record.reason}); "
                    "a terminal run never runs again"
                )
            journal.claim(conn, run_id, self.worker_id, now, timedelta(seconds=self.lease_s))
        run = Run(self, record, lease_until=now + timedelta(seconds=self.lease_s))
        await run.recover()
        return run

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
