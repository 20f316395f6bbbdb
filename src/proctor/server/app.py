"""The app factory: a FastAPI app over one runtime, with no globals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from proctor.errors import StoreUnavailable
from proctor.runtime import Runtime
from proctor.server.deciding import AgentFactory, Resumer, recover_forever
from proctor.server.errors import ErrorBody, install_error_handlers
from proctor.server.headers import SecurityHeaders, install_docs
from proctor.server.metrics import install_metrics
from proctor.server.pages import install_pages
from proctor.server.routes import router
from proctor.server.schemas import Health


def create_app(
    runtime: Runtime,
    *,
    resume_runs: bool = False,
    agent: AgentFactory | None = None,
    dropped_spans: Callable[[], int] | None = None,
    public_metrics: bool = False,
    insecure_http: bool = False,
) -> FastAPI:
    """The service over ``runtime``.

    ``resume_runs``: the runtime has the app's tools, so a decided approval resumes its
    run here (like ``proctor approvals approve --app``). Otherwise the answer says the
    run is ready to resume, and a worker with the tools resumes it. ``agent`` builds the
    agent (the app's model) that continues a resumed agent run to its end.
    ``dropped_spans`` counts the spans telemetry export dropped, for ``/metrics`` (by
    default the runtime's telemetry, when it exports);
    ``/metrics`` asks for a token that sees every tenant unless ``public_metrics``.
    The session cookie is ``Secure`` unless ``insecure_http``: the pages are served over
    plain HTTP on loopback, on purpose (``proctor serve --insecure-http-on-loopback``).
    Every answer carries security headers (see ``headers.py``).
    """
    resumer = Resumer(tools=resume_runs, agent=agent)
    telemetry = runtime.telemetry
    if dropped_spans is None and telemetry is not None:

        def dropped_spans() -> int:
            return telemetry.dropped

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        recovering = asyncio.create_task(recover_forever(runtime, resumer), name="recover")
        yield
        recovering.cancel()
        await resumer.drain()  # runs being continued here reach their next stop first

    app = FastAPI(
        lifespan=lifespan,
        title="proctor",
        summary="Runs, approvals, costs and the audit log of a proctor deployment.",
        version="1",
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # added below, with a Content-Security-Policy that admits it
        redoc_url=None,
    )
    app.state.runtime = runtime
    app.state.resumer = resumer
    app.state.insecure_http = insecure_http
    app.add_middleware(SecurityHeaders)
    install_error_handlers(app)
    app.include_router(router)
    install_docs(app, "/api/v1/docs", "/api/v1/openapi.json")
    install_metrics(app, runtime, dropped_spans=dropped_spans, require_token=not public_metrics)
    install_pages(app)  # the HTML pages at /, with their session cookie and /static

    @app.get(
        "/healthz",
        summary="Whether the store answers; needs no token",
        responses={503: {"model": ErrorBody}},
    )
    async def healthz() -> Health:
        def probe() -> None:
            with runtime.store.read() as conn:
                conn.execute(sa.text("SELECT 1"))

        try:
            await run_in_threadpool(probe)
        except Exception as exc:  # any failure to reach the store means "not healthy"
            raise StoreUnavailable(
                f"the store does not answer ({type(exc).__name__}); the server log has more"
            ) from exc
        return Health(status="ok", store=runtime.store.dialect)

    return app
