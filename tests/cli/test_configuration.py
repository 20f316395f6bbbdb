"""Bad configuration is a clear error with exit code 2, and messages print as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_an_unsupported_database_is_named_with_the_supported_ones(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_DB_URL", "mysql://app:s3cret@db.internal/orders")
    result = cli("runs", "list")
    assert result.exit_code == 2
    assert "the scheme 'mysql' is not supported" in result.output
    assert "sqlite:///PATH" in result.output
    assert "postgresql://" in result.output
    assert "MySQLdb" not in result.output
    assert "s3cret" not in result.output


def test_a_missing_provider_package_is_said_before_a_missing_key(tmp_path: Path) -> None:
    # A proctor installed without the providers extra: its SDK cannot be imported.
    code = (
        "import sys; sys.modules['openai'] = None\n"
        "from proctor.cli.main import main\n"
        "sys.argv = ['proctor', 'run', 'Where is A-1001?', '--model', 'openai:gpt-4o-mini']\n"
        "main()"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROCTOR_", "OPENAI_"))}
    env.update(PROCTOR_HOME=str(tmp_path / "home"), COLUMNS="300", NO_COLOR="1")
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "needs the providers extra (the openai package is not installed)" in done.stderr
    assert "OPENAI_API_KEY" not in done.stderr
    # How to install it, for this source checkout and for an installed proctor.
    assert "pip install -e '.[providers]'" in done.stderr
    assert "pip install 'proctor[providers]'" in done.stderr
