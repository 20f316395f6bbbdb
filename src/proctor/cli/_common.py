"""What every command shares: the console, settings, and turning errors into exit codes."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.text import Text

from proctor.app import load_app
from proctor.errors import ProctorError
from proctor.redaction.logs import install as install_redaction
from proctor.runtime import Runtime
from proctor.settings import load_settings

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def setup_logging() -> None:
    handler = RichHandler(console=err_console, show_time=False, show_path=False)
    install_redaction(handler)  # nothing sensitive reaches a terminal or a log file
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])


def fails_clearly(fn: Callable[P, R]) -> Callable[P, R]:
    """Print a proctor error as one clear message and exit with its code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ProctorError as exc:
            # The message is plain text: brackets in it (proctor[postgres]) are not markup.
            err_console.print(Text.assemble(("error: ", "bold red"), str(exc)), highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def run_async(coro: Coroutine[Any, Any, R]) -> R:
    return asyncio.run(coro)


def runtime(app_ref: str | None) -> Runtime:
    """A runtime over the configured store; with an app, able to run and resume calls."""
    settings = load_settings()
    if app_ref:
        return Runtime.for_app(load_app(app_ref), settings)
    return Runtime(policy=None, settings=settings)


APP_OPTION = typer.Option(
    None,
    "--app",
    envvar="PROCTOR_APP",
    help="The app whose tools resume runs, as module:attr (e.g. myapp.main:app).",
)

DEFAULT_APP = "proctor.examples.support:app"
"""The app ``run``, ``demo`` and ``eval run`` use unless told otherwise: the bundled example."""

RUN_APP_OPTION = typer.Option(
    DEFAULT_APP,
    "--app",
    envvar="PROCTOR_APP",
    help="The app to run, as module:attr: its tools, policy, model, playbook and eval suite.",
)
