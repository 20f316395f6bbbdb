"""``proctor serve``: the JSON API (needs the ``server`` extra)."""

from __future__ import annotations

import ipaddress

import typer

from proctor.agent import Agent
from proctor.agent.factory import agent_for_app
from proctor.app import load_app
from proctor.cli._common import APP_OPTION, console, fails_clearly
from proctor.errors import ConfigError, missing_extra
from proctor.runtime import Runtime
from proctor.settings import load_settings


@fails_clearly
def serve(
    host: str = typer.Option("127.0.0.1", help="The address to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="The port to listen on."),
    app_ref: str | None = APP_OPTION,
    public_metrics: bool = typer.Option(
        False,
        "--public-metrics",
        help="Serve /metrics without a token (by default it needs one that sees every tenant).",
    ),
    insecure_http_on_loopback: bool = typer.Option(
        False,
        "--insecure-http-on-loopback",
        help="Serve the pages over plain HTTP on a loopback address: the session cookie is "
        "then not Secure. Refused for any other host; put TLS in front instead.",
    ),
) -> None:
    """Serve the pages and the API under /api/v1 (OpenAPI at /api/v1/docs).

    With --app (or PROCTOR_APP), a decided approval resumes its run here: the approved
    call runs with the app's tools, and an agent run goes on with the app's model."""
    try:
        import uvicorn

        from proctor.redaction.logs import uvicorn_log_config
        from proctor.server.app import create_app
        from proctor.server.tokens import list_tokens
    except ModuleNotFoundError as exc:
        raise missing_extra("server", exc.name, "the service") from exc
    if insecure_http_on_loopback and not is_loopback(host):
        raise ConfigError(
            f"--insecure-http-on-loopback serves session cookies over plain HTTP, so only on a "
            f"loopback address (127.0.0.1, ::1, localhost), not {host}; serve {host} behind "
            "a proxy that ends TLS, without the flag"
        )
    settings = load_settings()
    app = load_app(app_ref) if app_ref else None
    rt = Runtime.for_app(app, settings) if app else Runtime(policy=None, settings=settings)
    agent = None
    if app is not None and app.model is not None:
        given = app

        def agent(r: Runtime) -> Agent:
            return agent_for_app(r, given)

    if not list_tokens(rt.store):
        console.print(
            "No tokens yet. Create one to log in to the pages or call the API:\n"
            "  proctor tokens create --name NAME --role approver --policy-role supervisor"
        )
    if app is None:
        console.print("Without --app, decided approvals wait for a worker to resume their runs.")
    if not insecure_http_on_loopback:
        console.print(
            "Session cookies are Secure: open the pages over https (a proxy that ends TLS), "
            "or pass --insecure-http-on-loopback to use them over plain http on this machine."
        )
    console.print(f"Pages at http://{host}:{port}/  API at http://{host}:{port}/api/v1/docs")
    service = create_app(
        rt,
        resume_runs=app is not None,
        agent=agent,
        public_metrics=public_metrics,
        insecure_http=insecure_http_on_loopback,
    )
    try:
        uvicorn.run(
            service,
            host=host,
            port=port,
            log_config=uvicorn_log_config(),
        )
    finally:
        rt.close()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``): reachable from this
    machine only."""
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
