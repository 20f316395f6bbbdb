"""Bad configuration is a clear error with exit code 2, and messages print as written."""

from __future__ import annotations

import pytest

from .conftest import Cli


def test_a_bad_setting_names_the_variable(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCTOR_LEASE_S", "soon")
    result = cli("runs", "list")
    assert result.exit_code == 2
    assert "PROCTOR_LEASE_S" in result.output
    assert "Traceback" not in result.output


def test_brackets_in_an_error_message_are_printed(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_DB_URL", "nosuchdb://x")
    result = cli("runs", "list")
    assert result.exit_code == 2
    assert "proctor[postgres]" in result.output
