"""The CLI reference, written from the commands' own help: every command of the
``proctor`` app, found by walking it (a command added later is in it without a word
here), with its help as ``proctor COMMAND --help`` prints it in plain text.

    python -m proctor.cli.reference --write   # docs/cli-reference.md

A test fails when the file in the repository is not what this writes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup

WIDTH = 88
"""Help text is wrapped at this width, whatever the terminal: the file must not vary."""
REFERENCE = Path(__file__).resolve().parents[3] / "docs" / "cli-reference.md"
"""Where the reference lives in a source checkout."""
_HEADER = """\
# CLI reference

Every `proctor` command and its options, as `proctor COMMAND --help` prints them.
This page is generated from the commands themselves
(`python -m proctor.cli.reference --write`); a test fails when it is out of date.
For what the commands are for, and how they fit together, see [the CLI guide](cli.md).
"""


def walk(
    command: Any, path: tuple[str, ...], parent: Any = None
) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    """Each command under ``command`` (a Click command, as Typer builds it) with its
    context: itself first, then the commands of a group, in the group's order."""
    ctx = command.context_class(
        command, info_name=path[-1], parent=parent, terminal_width=WIDTH, max_content_width=WIDTH
    )
    yield path, command, ctx
    if hasattr(command, "list_commands"):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, (*path, name), ctx)


def plain_help(command: Any, ctx: Any) -> str:
    """The command's help as plain text (click's layout), ``WIDTH`` columns wide."""
    formatter = ctx.make_formatter()
    if isinstance(command, TyperCommand | TyperGroup):
        mode = command.rich_markup_mode
        command.rich_markup_mode = None  # Typer's plain layout, not its terminal panels
        try:
            command.format_help(ctx, formatter)
        finally:
            command.rich_markup_mode = mode
    else:
        command.format_help(ctx, formatter)
    return "\n".join(line.rstrip() for line in formatter.getvalue().splitlines()) + "\n"


def render(app: typer.Typer) -> str:
    """The reference of ``app`` as Markdown."""
    root = typer.main.get_command(app)
    parts = [_HEADER]
    for path, command, ctx in walk(root, ("proctor",)):
        parts.append(f"\n## {' '.join(path)}\n\n```text\n{plain_help(command, ctx)}```\n")
    return "".join(parts)


def main(argv: list[str]) -> int:
    from proctor.cli.main import app

    text = render(app)
    if argv == ["--write"]:
        REFERENCE.write_text(text, encoding="utf-8")
        print(f"wrote {REFERENCE}")
        return 0
    if argv:
        print("usage: python -m proctor.cli.reference [--write]", file=sys.stderr)
        return 2
    print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
