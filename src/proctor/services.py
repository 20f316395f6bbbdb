"""What the kernel needs of a deployment, built once by ``Runtime`` and never the whole of it.

Kernel modules (the pipeline, the recorder, approvals, budgets) receive this
frozen value instead of the runtime, so each one says what it uses and a test
can build one from parts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from proctor.audit import AuditLog
from proctor.budgets import DailyLedger
from proctor.clock import Clock
from proctor.errors import ConfigError
from proctor.models.pricing import PriceTable
from proctor.policy import PolicyBundle
from proctor.redaction.policy import Redaction
from proctor.sealing import Sealer
from proctor.store import Store
from proctor.tools import Credential, Tool, ToolRegistry


class CallObserver(Protocol):
    """Sees each governed call pass its durable points (tracing, tests that crash on purpose)."""

    def after_intent(self, run_id: str, step: int, tool: str) -> None: ...

    def after_execute(self, run_id: str, step: int, tool: str) -> None: ...


CredentialIssuer = Callable[[Tool, str, str], Credential]
"""``(tool, run_id, tenant) -> Credential``: what a tool call may use."""


def scoped_credential(t: Tool, run_id: str, tenant: str) -> Credential:
    """The default issuer: a credential that names just the tool's declared scopes."""
    return Credential(scopes=t.scopes)


@dataclass(frozen=True)
class Lease:
    """How this worker holds the runs it works on."""

    worker_id: str
    """Who holds a run: written to the run while its lease lasts."""
    seconds: float
    """How long a lease lasts without renewal; another worker may take the run after it."""


@dataclass(frozen=True)
class Services:
    """The parts of a runtime the kernel works with."""

    store: Store
    audit: AuditLog
    redaction: Redaction
    sealer: Sealer
    """Seals whole values while a run is live, and keys argument hashes."""
    clock: Clock
    bundle: PolicyBundle | None
    """The policy bundle; ``None`` for a runtime that only reads (``policy`` raises)."""
    tools: ToolRegistry
    ledger: DailyLedger
    lease: Lease
    observers: Sequence[CallObserver] = ()
    credentials: CredentialIssuer = scoped_credential
    retry_backoff_s: float = 0.1
    """First pause before retrying a transient error; doubled on each retry."""
    run_ended: Callable[[str], None] = lambda run_id: None
    """Called once a run has ended durably (its spans go to telemetry)."""

    @property
    def policy(self) -> PolicyBundle:
        if self.bundle is None:
            raise ConfigError(
                "this runtime has no policy bundle, so it cannot run calls; "
                "give it one (or an app: PROCTOR_APP=module:app)"
            )
        return self.bundle

    @cached_property
    def prices(self) -> PriceTable:
        """Built-in prices, with the bundle's ``prices:`` over them."""
        return PriceTable(self.policy.settings.prices)

    @cached_property
    def version(self) -> str:
        """The version of the policy bundle this worker decides with."""
        return str(self.policy.version)
