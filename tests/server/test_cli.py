"""``proctor tokens`` and ``proctor serve`` as command functions (main.py registers them)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from proctor.cli import tokens

SECRET = re.compile(r"pct_[A-Za-z0-9_-]{43}")


def test_create_shows_the_token_once_list_never_and_revoke_stops_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROCTOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROCTOR_DB_URL", raising=False)
    runner = CliRunner()
    created = runner.invoke(
        tokens.app, ["create", "--name", "sam", "--role", "approver", "--tenant", "acme"]
    )
    assert created.exit_code == 0, created.output
    [secret] = SECRET.findall(created.output)

    listed = runner.invoke(tokens.app, ["list"])
    assert listed.exit_code == 0, listed.output
    assert "sam" in listed.output
    assert "approver" in listed.output
    assert secret not in listed.output
    conn = sqlite3.connect(tmp_path / "home" / "proctor.db")
    try:
        assert secret not in str(conn.execute("SELECT * FROM api_tokens").fetchall())
    finally:
        conn.close()

    twice = runner.invoke(tokens.app, ["create", "--name", "sam", "--role", "viewer"])
    assert twice.exit_code == 2
    assert "already exists" in twice.output

    revoked = runner.invoke(tokens.app, ["revoke", "sam"])
    assert revoked.exit_code == 0, revoked.output
    missing = runner.invoke(tokens.app, ["revoke", "nobody"])
    assert missing.exit_code == 2
    assert "no token named nobody" in missing.output

    bad_role = runner.invoke(tokens.app, ["create", "--name", "x", "--role", "god"])
    assert bad_role.exit_code == 2


def test_serve_runs_uvicorn_with_an_app_over_the_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer
    import uvicorn
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from proctor.cli import serve

    monkeypatch.setenv("PROCTOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PROCTOR_DB_URL", raising=False)
    monkeypatch.delenv("PROCTOR_APP", raising=False)
    seen: dict[str, object] = {}

    def fake_run(app: FastAPI, host: str, port: int, log_config: dict[str, Any]) -> None:
        seen.update(app=app, host=host, port=port, log_config=log_config)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    command = typer.Typer()
    command.command()(serve.serve)
    result = CliRunner().invoke(command, ["--port", "8123"])
    assert result.exit_code == 0, result.output
    app = seen["app"]
    assert isinstance(app, FastAPI)
    assert app.state.resumer.tools is False
    assert (seen["host"], seen["port"]) == ("127.0.0.1", 8123)
    # Every handler the server logs through redacts what it writes.
    handlers = seen["log_config"]["handlers"]  # type: ignore[index]
    assert all(h["filters"] == ["redact"] for h in handlers.values())
    guarded = TestClient(app).get("/metrics")
    assert guarded.status_code == 401  # a token that sees every tenant, unless public

    result = CliRunner().invoke(command, ["--public-metrics"])
    assert result.exit_code == 0, result.output
    metrics = TestClient(seen["app"]).get("/metrics")  # type: ignore[arg-type]
    assert metrics.status_code == 200
