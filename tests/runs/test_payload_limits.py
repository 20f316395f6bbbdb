"""Arguments and results over the tenant's size limit: refused before they are parsed,
redacted or stored, and never a crash of the run."""

from __future__ import annotations

from typing import Any

import pytest

from proctor import CallStatus, Effect, InvalidAction, tool
from proctor.testing import TestEnvironment

POLICY = """
@id("all")
permit(principal, action, resource);
"""
LIMITS = "label: limits\nredaction:\n  default:\n    max_payload_bytes: 2048\n"


@tool(effect=Effect.READ)
def fetch(size: int) -> str:
    """Returns ``size`` characters."""
    return "x" * size


@tool(effect=Effect.WRITE)
def upload(body: str) -> dict[str, Any]:
    """Stores a body and echoes it back, as some APIs do."""
    return {"stored": body}


@tool(effect=Effect.WRITE)
def export(rows: int) -> str:
    """Writes an export and returns all of it."""
    return "r" * rows


async def test_arguments_over_the_limit_are_an_invalid_call_that_never_runs() -> None:
    async with TestEnvironment(POLICY, proctor_yaml=LIMITS, tools=[fetch, upload]) as env:
        run = await env.start_run()
        with pytest.raises(InvalidAction, match=r"arguments of upload is .* over the limit"):
            await run.call("upload", {"body": "y" * 5000})
        assert run.steps == ()
        ok = await run.call("upload", {"body": "y" * 100})
    assert ok.status is CallStatus.EXECUTED


async def test_a_result_over_the_limit_fails_a_read_and_is_omitted_from_a_write() -> None:
    async with TestEnvironment(POLICY, proctor_yaml=LIMITS, tools=[fetch, export]) as env:
        run = await env.start_run()
        read = await run.call("fetch", {"size": 5000})
        write = await run.call("export", {"rows": 5000})
    assert read.status is CallStatus.FAILED
    assert read.error is not None
    assert read.error["kind"] == "too_large"
    assert write.status is CallStatus.EXECUTED  # it happened; its result is not kept
    assert "over the limit" in write.result["omitted"]
