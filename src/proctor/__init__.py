"""proctor: a governed runtime for AI agents that act on real systems.

rt = Runtime(policy="policies/support", tools=[lookup_order, issue_refund])
run = await rt.start_run(RunSpec(agent="bot", role="support_agent", tenant="acme",
                                 workflow="refunds", requester="alice"))
outcome = await run.call("issue_refund", {"order_id": "A-1", "amount": "20.00"})
"""

from proctor.app import App, load_app
from proctor.approvals import ApprovalQueue, ApprovalRequest, Approver
from proctor.budgets import BudgetCaps
from proctor.clock import Clock, SystemClock
from proctor.errors import (
    ActionDenied,
    ApprovalAlreadyDecided,
    ApprovalError,
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalPending,
    BudgetExceeded,
    CallNotExecuted,
    ConfigError,
    InvalidAction,
    NotAllowedToApprove,
    PolicyError,
    ProctorError,
    ReplayMismatch,
    RunBusy,
    RunFailure,
    RunNotFound,
    RunStateError,
    RunTerminated,
    StoreError,
    ToolDefinitionError,
    ToolFailed,
    TooManyInvalidActions,
    TransientToolError,
)
from proctor.policy import Decision, DecisionEffect, PolicyBundle, ResourceRef
from proctor.runs import CallOutcome, CallStatus, PlannedCall, Proposal, Run, RunSpec
from proctor.runtime import CallObserver, Runtime
from proctor.settings import Settings
from proctor.states import Mode, Reason, RunState
from proctor.tools import (
    Credential,
    Effect,
    Reconciliation,
    Tool,
    ToolContext,
    ToolDeclaration,
    Trust,
    tool,
)

__version__ = "0.1.0"

__all__ = [
    "ActionDenied",
    "App",
    "ApprovalAlreadyDecided",
    "ApprovalError",
    "ApprovalExpired",
    "ApprovalNotFound",
    "ApprovalPending",
    "ApprovalQueue",
    "ApprovalRequest",
    "Approver",
    "BudgetCaps",
    "BudgetExceeded",
    "CallNotExecuted",
    "CallObserver",
    "CallOutcome",
    "CallStatus",
    "Clock",
    "ConfigError",
    "Credential",
    "Decision",
    "DecisionEffect",
    "Effect",
    "InvalidAction",
    "Mode",
    "NotAllowedToApprove",
    "PlannedCall",
    "PolicyBundle",
    "PolicyError",
    "ProctorError",
    "Proposal",
    "Reason",
    "Reconciliation",
    "ReplayMismatch",
    "ResourceRef",
    "Run",
    "RunBusy",
    "RunFailure",
    "RunNotFound",
    "RunSpec",
    "RunState",
    "RunStateError",
    "RunTerminated",
    "Runtime",
    "Settings",
    "StoreError",
    "SystemClock",
    "TooManyInvalidActions",
    "Tool",
    "ToolContext",
    "ToolDeclaration",
    "ToolDefinitionError",
    "ToolFailed",
    "TransientToolError",
    "Trust",
    "__version__",
    "load_app",
    "tool",
]
