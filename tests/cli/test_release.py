"""``proctor release``: record releases from an app, show and compare them, move them
between channels, each step saying what it did or what is wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

from .conftest import SHOP_APP, SHOP_BUNDLE, Cli


def _looser(tmp_path: Path) -> Path:
    bundle = tmp_path / "looser"
    shutil.copytree(SHOP_BUNDLE, bundle)
    settings = bundle / "proctor.yaml"
    settings.write_text(settings.read_text() + "\nslo:\n  alpha: 0.01\n")
    return bundle


def test_releases_are_recorded_shown_compared_and_moved(cli: Cli, tmp_path: Path) -> None:
    made = cli("release", "create", "--app", SHOP_APP, "--note", "first", "--by", "ann")
    assert made.exit_code == 0, made.output
    assert "Recorded release r1" in made.output
    looser = _looser(tmp_path)
    made = cli(
        "release", "create", "--app", SHOP_APP, "--policy", str(looser), "--note", "relabelled"
    )
    assert made.exit_code == 0, made.output
    again = cli("release", "create", "--app", SHOP_APP, "--note", "rebuilt")
    assert "Same manifest as r1" in again.output

    shown = cli("release", "show", "r1")
    assert shown.exit_code == 0, shown.output
    assert "note: first" in shown.output
    assert "issue_refund: " in shown.output

    compared = cli("release", "diff", "r1", "r2")
    assert compared.exit_code == 0, compared.output
    assert "policy: kernel-demo@" in compared.output
    assert "both releases need an eval report" in compared.output
    assert "r1 → r3: no change(s)." in cli("release", "diff", "r1", "r3").output

    for args in (
        ("promote", "r1", "--by", "ann"),
        ("shadow", "r2", "--fraction", "0.5"),
        ("shadow", "--stop"),
        ("canary", "r2", "--percent", "20"),
    ):
        moved = cli("release", *args)
        assert moved.exit_code == 0, moved.output
    listed = cli("release", "list")
    assert "stable" in listed.output
    assert "canary 20%" in listed.output
    back = cli("release", "rollback", "--reason", "smoke test", "--by", "bob")
    assert back.exit_code == 0, back.output
    assert "Rolled back r2; r1 serves 100% of new runs." in back.output
    assert "No canary: nothing to judge." in cli("release", "monitor", "--app", SHOP_APP).output
    verified = cli("audit", "verify")
    assert verified.exit_code == 0, verified.output


def test_mistakes_are_explained(cli: Cli) -> None:
    no_note = cli("release", "create", "--app", SHOP_APP, "--note", " ")
    assert no_note.exit_code != 0
    assert "a release needs a note saying what changed" in no_note.output
    assert cli("release", "create", "--app", SHOP_APP, "--note", "first").exit_code == 0
    early = cli("release", "canary", "r1", "--percent", "10")
    assert early.exit_code != 0
    assert "no stable release to canary beside" in early.output
    unknown = cli("release", "show", "r7")
    assert "no release 'r7'; `proctor release list` shows them" in unknown.output
    nothing = cli("release", "rollback")
    assert "no canary to roll back" in nothing.output
