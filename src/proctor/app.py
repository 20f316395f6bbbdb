"""An application: everything a deployment, an example or a user's own code plugs in.

An ``App`` declares its tools, its policy bundle, the model its agent runs on,
the system prompt, the simulated model's playbook and its eval suite; the core
names no application. Workers, the CLI and the service load the same ``App``
(``--app module:attr`` or ``PROCTOR_APP=module:attr``) so that a run paused in
one process can resume, with its tools, in another.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from proctor.errors import ConfigError
from proctor.models.playbook import Playbook
from proctor.tools import Tool

__all__ = ["App", "AppSuite", "load_app"]


class AppSuite(Protocol):
    """An eval suite as an app holds it; ``proctor.evals.suite.EvalSuite`` is the one
    to give (the runner accepts no other)."""

    @property
    def name(self) -> str:
        """The suite's name, as reports show it."""
        ...

    @property
    def scenarios(self) -> Path:
        """Its scenario bank: a folder of ``*.yaml`` files, or one file."""
        ...


@dataclass(frozen=True)
class App:
    """What an application brings to proctor. Only ``tools`` and ``policy`` are required."""

    tools: Sequence[Tool]
    """The tools its runs may call, each governed."""
    policy: Path
    """Its policy bundle: a folder of Cedar policies and ``proctor.yaml``."""
    model: str | None = None
    """The model the app's agent runs on (``simulated``, ``openai:MODEL``...), so that a
    worker or the service can continue an agent run after an approval; None for apps
    that drive runs from their own code."""
    system_prompt: str | None = None
    """What the agent's model is told first; None for the agent's generic prompt."""
    playbook: Playbook | None = None
    """The simulated model's brain for this app (what to do next for a conversation,
    and the targets of its faults); without one, the simulated model answers that it
    has none and proposes nothing."""
    suite: AppSuite | None = None
    """Its eval suite (a ``proctor.evals.suite.EvalSuite``): the world each scenario
    runs in, its tables, rubrics and scenario bank; None for an app without one."""
    roles: Sequence[str] = ()
    """The roles its agents act in (``principal in Role::"..."``). ``proctor policy
    schema`` declares exactly these, so ``proctor policy check --app`` names a policy's
    misspelt role; empty: the role of the eval suite's runs, if it has one."""


def load_app(reference: str) -> App:
    """``module:attr`` naming an ``App`` or a function returning one."""
    module_name, _, attr = reference.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"app reference {reference!r} must look like 'package.module:app'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r} for app {reference!r}: {exc}") from exc
    target: App | Callable[[], App] | None = getattr(module, attr, None)
    app = target() if callable(target) and not isinstance(target, App) else target
    if not isinstance(app, App):
        raise ConfigError(f"{reference!r} is not a proctor App (nor a function returning one)")
    return app
