"""The schema version of a stored run, checked on every read.

A runs row carries the ``schema_version`` its writer used (``RUN_SCHEMA_VERSION``);
it covers the run's steps and model calls too. A run stored by a newer proctor is
refused with ``RunSchemaTooNew``; one stored by an older proctor is upgraded, in
memory, one version at a time, before it is read. ``tests/runs/fixtures`` keeps a
run of every version, each read through the read model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from proctor.errors import RunSchemaTooNew, StoreError
from proctor.runs.model import RUN_SCHEMA_VERSION


@dataclass
class StoredRun:
    """One run's rows as the store holds them, before they are read into views."""

    run: dict[str, Any]
    steps: list[dict[str, Any]] = field(default_factory=list)
    model_calls: list[dict[str, Any]] = field(default_factory=list)


Upgrade = Callable[[StoredRun], StoredRun]


def _lease_generation(stored: StoredRun) -> StoredRun:
    """Version 2 fences a worker's writes with the run's lease generation."""
    stored.run.setdefault("lease_generation", 0)
    return stored


def _sessions_and_call_ids(stored: StoredRun) -> StoredRun:
    """Version 3 binds a run to a framework's session and a step to the caller's call id."""
    stored.run.setdefault("session", None)
    for step in stored.steps:
        step.setdefault("call_id", None)
    return stored


def _words_and_call_details(stored: StoredRun) -> StoredRun:
    """Version 4 keeps the request and the final answer (redacted) and the run's origin;
    a model call, when it started, the provider's response id, server and parameters."""
    stored.run.setdefault("request", None)
    stored.run.setdefault("answer", None)
    stored.run.setdefault("origin", "live")
    for call in stored.model_calls:
        for name in ("started_at", "response_id", "server_address", "server_port", "params"):
            call.setdefault(name, None)
    return stored


def _releases(stored: StoredRun) -> StoredRun:
    """Version 5 records the release a run was opened under (None before any release)."""
    stored.run.setdefault("release", None)
    return stored


UPGRADES: dict[int, Upgrade] = {
    1: _lease_generation,
    2: _sessions_and_call_ids,
    3: _words_and_call_details,
    4: _releases,
}
"""``UPGRADES[v]`` turns a run stored at version ``v`` into one of version ``v + 1``.

A change to what a run stores raises ``RUN_SCHEMA_VERSION``, adds its upgrade here
and a fixture of the version it leaves behind."""


def current(stored: StoredRun) -> StoredRun:
    """``stored`` at this proctor's ``RUN_SCHEMA_VERSION``, or why it cannot be read."""
    run_id = str(stored.run.get("id"))
    version = int(stored.run.get("schema_version") or 0)
    if version > RUN_SCHEMA_VERSION:
        raise RunSchemaTooNew(run_id, version, RUN_SCHEMA_VERSION)
    while version < RUN_SCHEMA_VERSION:
        upgrade = UPGRADES.get(version)
        if upgrade is None:
            raise StoreError(
                f"run {run_id} is stored at schema version {version}, which no proctor "
                f"wrote (this one reads 1 to {RUN_SCHEMA_VERSION}); the row is damaged"
            )
        stored = upgrade(stored)
        version += 1
        stored.run["schema_version"] = version
    return stored
