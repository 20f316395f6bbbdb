"""The exception tree, and the signals a tool raises.

Every error proctor raises derives from ``ProctorError`` and declares how it
surfaces: an HTTP status for the service and an exit code for the CLI. Callers
catch at the level they need. Three families matter to code that runs agents:

- ``ConfigError``: raised at load time, before any side effect;
- ``RunFailure``: the run ended ``failed_safe``; the exception's ``reason`` is
  the reason the run ended with;
- ``CallNotExecuted``: one call did not run (``CallOutcome.unwrap()`` raises
  it); the run goes on.

    ProctorError
    ├── ConfigError              raised at load time, before any side effect
    │   ├── PolicyError          a policy bundle that does not load or check
    │   ├── ToolDefinitionError  a function that cannot become a tool
    │   └── StoreError           a database that cannot be opened, migrated or read
    │       └── RunSchemaTooNew  a run stored by a newer proctor
    ├── RunFailure               the run ended ``failed_safe`` with ``reason``
    │   ├── BudgetExceeded
    │   ├── TooManyInvalidActions
    │   └── ModelError           no usable answer from a model
    ├── CallNotExecuted          one call did not run; the run goes on
    │   ├── ActionDenied         policy or an approver refused it
    │   ├── ApprovalPending      it waits for an approver
    │   └── ToolFailed           its tool raised, timed out, or its outcome is unknown
    ├── InvalidAction            a proposed call that does not fit its tool
    ├── ApprovalError            an approval that cannot be given
    │   ├── ApprovalNotFound
    │   ├── NotAllowedToApprove  wrong role, the requester, or the agent
    │   ├── ApprovalExpired
    │   └── ApprovalAlreadyDecided
    ├── RunStateError            a run that cannot do what was asked
    │   ├── RunNotFound
    │   ├── RunTerminated        the run already ended
    │   ├── RunBusy              another worker holds the run
    │   │   └── LeaseLost        another worker took it over from this one
    │   └── ReplayMismatch       re-run code proposed a different call
    ├── AccessError              a caller the service does not let in
    │   ├── Unauthorized         no token, or an unknown or revoked one
    │   └── Forbidden            a token whose role may not do this
    ├── TokenError               a token that cannot be created or revoked
    │   └── TokenNotFound
    ├── PayloadTooLarge          a tool argument or result over the redaction size limit
    ├── StoreUnavailable         the store does not answer
    └── ReportError              an eval report that cannot be read
        └── ReportNotFound

Signals, raised by a tool to steer its call, are not errors:

    Exception
    └── TransientToolError       worth retrying (idempotent tools only, bounded)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from proctor.states import Reason


class ProctorError(Exception):
    """Root of every error proctor raises."""

    http_status: int = 500
    exit_code: int = 1


class ConfigError(ProctorError):
    """Configuration that cannot be used; raised before any side effect."""

    exit_code = 2


def install_command(extra: str) -> str:
    """How to install one of proctor's extras, for a source checkout and for a package.

    The form that fits how this proctor was installed comes first."""
    package = f"pip install 'proctor[{extra}]'"
    checkout = f"pip install -e '.[{extra}]'"
    root = Path(__file__).resolve().parents[2]  # src/proctor/errors.py -> the checkout
    if (root / "pyproject.toml").is_file() and (root / "src" / "proctor").is_dir():
        return f"{checkout} (in this source checkout; an installed proctor: {package})"
    return f"{package} (in a source checkout of proctor: {checkout})"


def missing_extra(extra: str, missing: str | None, needed_for: str) -> ConfigError:
    """The error for an optional package that is not installed: which, and how to get it."""
    what = f"the {missing} package is" if missing else "a package of it is"
    return ConfigError(
        f"{needed_for} needs the {extra} extra ({what} not installed); install it with: "
        f"{install_command(extra)}"
    )


@dataclass(frozen=True)
class PolicyIssue:
    """One problem in a policy bundle, located in its file."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


class PolicyError(ConfigError):
    """A policy bundle that does not load; ``issues`` says where and why."""

    def __init__(self, bundle: str, issues: list[PolicyIssue]) -> None:
        self.bundle = bundle
        self.issues = issues
        lines = "\n".join(f"  {issue}" for issue in issues)
        super().__init__(
            f"policy bundle {bundle} has {len(issues)} problem(s):\n{lines}\n"
            f"Fix them and run `proctor policy check {bundle}`."
        )


class ToolDefinitionError(ConfigError):
    """A function that cannot become a tool, or a tool registered twice."""


class StoreError(ConfigError):
    """The database cannot be opened, migrated or used."""


class AccessError(ProctorError):
    """A caller the service does not let in."""

    http_status = 403


class Unauthorized(AccessError):
    """No bearer token, or one that is unknown or revoked."""

    http_status = 401


class Forbidden(AccessError):
    """A valid token whose role may not do this."""

    http_status = 403


class TokenError(ProctorError):
    """A token that cannot be created or revoked as asked."""

    http_status = 409
    exit_code = 2


class TokenNotFound(TokenError):
    http_status = 404


class StoreUnavailable(ProctorError):
    """The store does not answer: the service is not healthy."""

    http_status = 503


class ReportError(ProctorError):
    """An eval report that cannot be read (written by another version, or damaged)."""


class ReportNotFound(ReportError):
    http_status = 404


class InvalidAction(ProctorError):
    """A proposed call that does not fit the tool: it never executes.

    ``tool`` and ``field`` name what was wrong; ``problems`` lists every
    field error as ``(field, message)``.
    """

    http_status = 422
    exit_code = 5

    def __init__(
        self,
        tool: str,
        message: str,
        *,
        field: str | None = None,
        problems: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.tool = tool
        self.field = field
        self.problems = problems
        super().__init__(message)


class ApprovalError(ProctorError):
    """An approval that cannot be given or recorded."""

    http_status = 409
    exit_code = 3


class ApprovalNotFound(ApprovalError):
    http_status = 404


class NotAllowedToApprove(ApprovalError):
    http_status = 403


class ApprovalExpired(ApprovalError):
    pass


class ApprovalAlreadyDecided(ApprovalError):
    pass


class RunStateError(ProctorError):
    """A run that cannot do what was asked in its current state."""

    http_status = 409
    exit_code = 4


class RunNotFound(RunStateError):
    http_status = 404


class RunTerminated(RunStateError):
    """The run already ended; a terminal run never runs again."""


class RunBusy(RunStateError):
    """Another worker holds the run's lease."""


class LeaseLost(RunBusy):
    """Another worker took the run over: this one's writes are fenced off for good."""


class ReplayMismatch(RunStateError):
    """Code re-run after a resume proposed a different call than the journal holds."""


class RunFailure(ProctorError):
    """The run was stopped before harm and ended ``failed_safe`` with ``reason``."""

    http_status = 409
    exit_code = 6
    reason: Reason = Reason.TOOL_ERROR
    """The reason the run ended with: the one source of it."""


class BudgetExceeded(RunFailure):
    reason = Reason.BUDGET_EXCEEDED


class TooManyInvalidActions(RunFailure):
    reason = Reason.INVALID_ACTIONS


class ModelError(RunFailure):
    """A model call that gave no usable answer.

    ``retryable`` says whether trying again may help (a 429, a 5xx, a timeout);
    providers retry those themselves a bounded number of times before raising.
    """

    reason = Reason.MODEL_ERROR

    def __init__(self, message: str, *, retryable: bool, status: int | None = None) -> None:
        self.retryable = retryable
        self.status = status
        super().__init__(message)


class RunSchemaTooNew(StoreError):
    """A run stored by a newer proctor, at a schema version this one does not know."""

    def __init__(self, run_id: str, version: int, known: int) -> None:
        self.run_id = run_id
        self.version = version
        self.known = known
        super().__init__(
            f"run {run_id} is stored at schema version {version}, newer than the {known} "
            "this proctor reads; upgrade proctor to read it"
        )


class CallNotExecuted(ProctorError):
    """One governed call did not run; ``CallOutcome.unwrap()`` raises it. The run goes on."""

    http_status = 409
    exit_code = 7


class ActionDenied(CallNotExecuted):
    """Policy, or an approver, refused the call."""

    http_status = 403


class ApprovalPending(CallNotExecuted):
    """The call waits for an approver; resume the run once it is decided."""


class ToolFailed(CallNotExecuted):
    """The call's tool raised or timed out, or its outcome is unknown."""

    http_status = 502


class TransientToolError(Exception):
    """Raised by a tool for an error worth retrying (a timeout, a 503).

    A signal, not an error: only tools that are idempotent are retried, and only a
    bounded number of times; past that the call fails.
    """


class PayloadTooLarge(ProctorError):
    """A tool argument set or result over the size limit of the tenant's redaction settings.

    Raised before the payload is redacted, stored or executed: detectors read every
    byte of what is stored, and untrusted text must not buy unbounded work.
    ``what`` names the payload (``arguments of refund``), ``size`` and ``limit`` are
    bytes of UTF-8 JSON, ``setting`` is the ``proctor.yaml`` key that raises the limit.
    """

    http_status = 413
    exit_code = 5

    def __init__(self, what: str, size: int, limit: int, setting: str) -> None:
        self.what = what
        self.size = size
        self.limit = limit
        self.setting = setting
        super().__init__(
            f"{what} is {size:,} bytes, over the limit of {limit:,} bytes; "
            f"send less, or raise `{setting}` in the bundle's proctor.yaml"
        )
