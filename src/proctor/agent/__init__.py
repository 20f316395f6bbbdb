"""The agent: a bounded loop that proposes tool calls for the runtime to govern."""

from proctor.agent.loop import DEFAULT_SYSTEM_PROMPT, Agent, AgentConfig, AgentResult

__all__ = ["DEFAULT_SYSTEM_PROMPT", "Agent", "AgentConfig", "AgentResult"]
