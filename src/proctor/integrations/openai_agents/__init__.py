"""Governance for agents written with the OpenAI Agents SDK (the ``openai-agents`` extra).

``govern(agent, governor)`` replaces the function tools of an agent, and of every agent
it hands off to or uses as a tool, with governed ones: each call the model makes is
validated, decided by policy, written to the audit log as an intent, and only then
executed by the tool's own ``on_invoke_tool``. The SDK's tool call id is the proctor
call id, so a call is never executed twice, whatever the SDK replays on resume.

When policy requires approval, the tool's ``needs_approval`` says so, the approval is
recorded in proctor, and the SDK interrupts the run (``result.interruptions``).
``apply_approvals`` turns proctor's decisions into ``RunState.approve`` / ``reject``;
``resume`` does that and continues the run. Approving in the SDK grants nothing: a call
runs only once proctor's approval is granted.

``run`` and ``resume`` name the session (one conversation, one proctor run), count the
model's usage against the run's budget, and end the run when the SDK run ends.
"""

from proctor.integrations.openai_agents.approvals import Applied, apply_approvals
from proctor.integrations.openai_agents.runs import resume, run
from proctor.integrations.openai_agents.tools import RunStopped, govern, proctor_session

__all__ = [
    "Applied",
    "RunStopped",
    "apply_approvals",
    "govern",
    "proctor_session",
    "resume",
    "run",
]
