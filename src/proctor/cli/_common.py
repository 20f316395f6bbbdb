"""What every command shares: the console, settings, and turning errors into exit codes."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Coroutine, Iterable
from datetime import date, datetime
from typing import Any, ParamSpec, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Column, Table
from rich.text import Text

from proctor.app import load_app
from proctor.errors import ProctorError
from proctor.redaction.logs import install as install_redaction
from proctor.runs.views import resolve_id, short_ids
from proctor.runtime import Runtime
from proctor.settings import load_settings

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")


def _flags_take_no_value() -> None:
    """Typer's rich help shows a flag's type, ``--json <bool>``, as if the flag took a
    value (its plain help does not): show a flag as the plain help does, alone."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        if self.is_flag and not self.count:
            return None
        return shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_take_no_value()


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


def full_id(rt: Runtime, kind: str, given: str) -> str:
    """The stored id of ``kind`` (``run``, ``apr``) that ``given`` is or uniquely starts
    with: a short id from a list works wherever an id is asked for."""
    with rt.store.read() as conn:
        return resolve_id(conn, kind, given)


def shortened(rt: Runtime, kind: str, ids: Iterable[str]) -> dict[str, str]:
    """Each id by its shortest unique prefix, as lists show them."""
    with rt.store.read() as conn:
        return short_ids(conn, kind, ids)


_NUMERIC_COLUMNS = frozenset({"step", "calls", "cost", "tokens", "count", "runs"})


def compact_table(*columns: str, title: str | None = None) -> Table:
    """A table that fits 80 columns: no borders, a rule under the header, two spaces
    between columns; the first column (an id) never wraps, numbers align right."""
    table = Table(
        *(
            Column(name, no_wrap=n == 0, justify="right" if name in _NUMERIC_COLUMNS else "left")
            for n, name in enumerate(columns)
        ),
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        collapse_padding=True,
    )
    return table


def when(moment: datetime, today: date) -> str:
    """A time in a list (UTC): the time alone today, the day and time this year, the date
    in other years."""
    if moment.date() == today:
        return f"{moment:%H:%M:%S}"
    return f"{moment:%m-%d %H:%M}" if moment.year == today.year else f"{moment:%Y-%m-%d}"


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, dates and decimals as text."""
    print(json.dumps(value, indent=2, default=str))


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
