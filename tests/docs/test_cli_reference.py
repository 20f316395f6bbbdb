"""docs/cli-reference.md is what the commands' own help says, for every command there is."""

from __future__ import annotations

import typer

from proctor.cli.main import app
from proctor.cli.reference import REFERENCE, render, walk


def test_the_cli_reference_is_up_to_date() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(app), (
        "docs/cli-reference.md is out of date: python -m proctor.cli.reference --write"
    )


def test_the_reference_has_every_command_found_by_walking_the_app() -> None:
    text = render(app)
    paths = [" ".join(p) for p, _, _ in walk(typer.main.get_command(app), ("proctor",))]
    assert len(paths) > 30
    for path in paths:
        assert f"\n## {path}\n" in text, path


def test_a_command_added_later_is_in_the_reference() -> None:
    extra = typer.Typer()
    extra.add_typer(app, name="proctor-copy")

    @extra.command("release")
    def release(version: str = typer.Argument(..., help="The version to release.")) -> None:
        """Release a version."""

    text = render(extra)
    assert "\n## proctor release\n" in text
    assert "The version to release." in text
    assert "\n## proctor proctor-copy runs list\n" in text
