"""The service's pages: server-rendered HTML over the same store and rules as the API.

Runs (with filters), a run's timeline, the approval queue (approve or deny, live), costs
with charts, the eval reports, and the releases with their rollback switch. A person
logs in once with a bearer token and then holds a session cookie (see ``session.py``).
Every page applies the API's rules: a tenant-scoped token sees only its tenant, viewers
only read, and a decision goes through ``decide_and_resume`` exactly as the API's does.
Errors are shown on a page, with the same message the API would give.

``_base`` holds what every page shares; each other module adds its pages to ``router``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from proctor.runtime import Runtime
from proctor.server.pages import approvals, login, releases, reports, runs
from proctor.server.pages._base import HERE, money, router, took, when
from proctor.server.session import Sessions

__all__ = ["install_pages", "money", "took", "when"]

_PAGES = (approvals, login, releases, reports, runs)
"""Imported for the pages they add to ``router``."""


def install_pages(app: FastAPI) -> None:
    """Add the pages and their static files to the service (``create_app`` calls it)."""
    runtime: Runtime = app.state.runtime
    app.state.sessions = Sessions(runtime.clock.now)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
