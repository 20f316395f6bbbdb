"""Governance around agents written with other frameworks.

``Governor`` is what every integration shares: a framework's conversation is a proctor
run (its session), each of its tool calls a governed call keyed by the framework's own
call id, and an approval proctor asks for becomes the framework's own way to wait.
The integrations with LangGraph, the OpenAI Agents SDK and pydantic-ai live in
submodules of this package, each behind its extra; importing this package imports none.
"""

from proctor.integrations.governor import (
    ApprovalTicket,
    Declarations,
    Governor,
    Verdict,
)

__all__ = ["ApprovalTicket", "Declarations", "Governor", "Verdict"]
