"""After a full demo, no planted secret is anywhere proctor stores or sends data.

The support bank's privacy scenarios plant a value of every kind (card numbers, an
IBAN, an SSN, phone numbers, email addresses, an API key, a JWT) in requests and in
customers' order notes; the fixture holds customers' emails and phones. The demo
runs in its own process, exporting spans over OTLP to a local receiver; then a live
`proctor run` with secrets in its request, an evidence bundle, the API and the
pages. Every place is scanned for every planted value, raw and without separators.

The support world's own files (``worlds/*.db``, ``support-world.db``) are left out:
they are the customer's system of record, which holds these values by design.
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from proctor.evals.bank import load_bank
from proctor.examples.support import SCENARIOS, Fixture
from proctor.examples.support.suite import apply_fixtures, sensitive_values
from proctor.runtime import Runtime
from proctor.server.app import create_app
from proctor.server.tokens import Role, create_token
from proctor.settings import Settings
from tests.telemetry.receiver import HttpReceiver

pytest.importorskip("opentelemetry.sdk")

LIVE_REQUEST = (
    "Please refund $30 on order A-1001, it arrived broken. Card 4539 1488 0343 6467, "
    "write to priya.natarajan@example.net, key sk_live_4eC39HqLyjWDarjtT1zdp7dc"
)


def planted() -> list[str]:
    """Every sensitive value of the support fixture and the privacy scenarios."""
    base = Fixture.model_validate_json((SCENARIOS.parent / "fixture.json").read_text())
    values = set(sensitive_values(base, LIVE_REQUEST))
    for scenario in load_bank(SCENARIOS / "privacy.yaml").scenarios:
        values.update(sensitive_values(apply_fixtures(base, scenario), scenario.request))
    kinds = {"@", "4539", "GB82", "536-22", "sk_live", "eyJ", "+44"}
    assert all(any(k in v for v in values) for k in kinds), values  # each kind is planted
    return sorted(values)


def leaks(text: str, values: list[str]) -> list[str]:
    return [v[:4] + "…" for v in values if v in text]


def _proctor(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proctor", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _database_text(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return "\n".join(repr(row) for t in tables for row in db.execute(f'SELECT * FROM "{t}"'))
    finally:
        db.close()


def _files_text(root: Path) -> str:
    parts = []
    for path in sorted(root.rglob("*")):
        if path.is_file() and "worlds" not in path.parts and path.suffix != ".db":
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


async def _service_text(home: Path) -> tuple[str, int]:
    """Every API answer and page a viewer can reach; and how many runs it saw."""
    rt = Runtime(policy=None, settings=Settings(home=home))
    try:
        secret, _ = create_token(rt.store, "auditor", Role.VIEWER, None, rt.clock.now())
        transport = httpx.ASGITransport(app=create_app(rt))
        parts: list[str] = []
        # https: the session cookie is Secure.
        async with httpx.AsyncClient(transport=transport, base_url="https://proctor.test") as c:
            auth = {"Authorization": f"Bearer {secret}"}
            runs: list[dict[str, str]] = []
            params = {"limit": "100"}
            while True:  # every page
                listed = (await c.get("/api/v1/runs", params=params, headers=auth)).json()
                parts.append(repr(listed))
                runs += listed["items"]
                if listed["next"] is None:
                    break
                params = {"limit": "100", "cursor": listed["next"]}
            for run in runs:
                detail = await c.get(f"/api/v1/runs/{run['id']}", headers=auth)
                assert detail.status_code == 200
                parts.append(detail.text)
            for route in ("/api/v1/approvals", "/api/v1/costs", "/api/v1/audit/status"):
                answer = await c.get(route, headers=auth)
                assert answer.status_code == 200, route
                parts.append(answer.text)
            form = await c.get("/login")
            csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
            assert csrf is not None
            await c.post("/login", data={"token": secret, "csrf": csrf.group(1), "next": "/"})
            for page in ("/runs", "/approvals", "/costs", "/evals"):
                answer = await c.get(page)
                assert answer.status_code == 200, page
                parts.append(answer.text)
            for run in listed["items"]:
                parts.append((await c.get(f"/runs/{run['id']}")).text)
        return "\n".join(parts), len(runs)
    finally:
        rt.close()


@pytest.mark.slow
@pytest.mark.timeout(300)  # the whole demo and three more commands, each a process
def test_no_planted_secret_anywhere_after_a_full_demo(tmp_path: Path) -> None:
    values = planted()
    home = tmp_path / ".proctor"
    receiver = HttpReceiver()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROCTOR_"))} | {
        "PROCTOR_HOME": str(home),
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "COLUMNS": "200",
    }
    try:
        demo = _proctor("demo", env=env, cwd=tmp_path)
        assert demo.returncode == 0, demo.stderr
        live = _proctor("run", LIVE_REQUEST, env=env, cwd=tmp_path)
        assert live.returncode == 0, live.stdout + live.stderr
        bundle = tmp_path / "evidence.zip"
        exported = _proctor(
            "evidence",
            "export",
            "--since",
            "2000-01-01",
            "--out",
            str(bundle),
            env=env,
            cwd=tmp_path,
        )
        assert exported.returncode == 0, exported.stderr
    finally:
        receiver.close()

    with zipfile.ZipFile(bundle) as z:
        bundle_text = "\n".join(z.read(n).decode("utf-8", "replace") for n in z.namelist())
    database = _database_text(home / "proctor.db")
    service, runs_seen = asyncio.run(_service_text(home))
    places = {
        "demo output and logs": demo.stdout + demo.stderr,
        "proctor run output and logs": live.stdout + live.stderr,
        "evidence export output": exported.stdout + exported.stderr,
        "database": database,
        "reports": _files_text(home / "reports"),
        "spans (OTLP wire bytes)": receiver.received.raw().decode("utf-8", "replace"),
        "evidence bundle": bundle_text,
        "API answers and pages": service,
    }
    found = {place: leaks(text, values) for place, text in places.items()}
    assert found == {place: [] for place in places}

    # The scan reads real data: redacted values, every run, spans and a full bundle.
    assert "[redacted:card]" in database
    assert "[redacted:iban]" in database
    assert "[redacted:secret]" in database
    assert runs_seen == 96  # 95 scenarios and the live run
    assert receiver.received.count() > 500
    assert "audit.jsonl" in bundle_text or "manifest" in bundle_text
    assert "[redacted:" in places["proctor run output and logs"]
