"""An application: the tools and policy bundle a deployment governs, importable by name.

Workers, the CLI and the service load the same ``App`` (``PROCTOR_APP=module:attr``)
so that a run paused in one process can resume, with its tools, in another.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from proctor.errors import ConfigError
from proctor.tools import Tool


@dataclass(frozen=True)
class App:
    tools: Sequence[Tool]
    policy: Path
    model: str | None = None
    """The model the app's agent runs on (``simulated``, ``openai:MODEL``...), so that a
    worker or the service can continue an agent run after an approval; None for apps
    that drive runs from their own code."""


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
