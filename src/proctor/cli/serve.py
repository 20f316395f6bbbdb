"""``proctor serve``: the JSON API (needs the ``server`` extra)."""

from __future__ import annotations

import typer

from proctor.cli._common import APP_OPTION, fails_clearly, runtime
from proctor.errors import ConfigError


@fails_clearly
def serve(
    host: str = typer.Option("127.0.0.1", help="The address to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="The port to listen on."),
    app_ref: str | None = APP_OPTION,
) -> None:
    """Serve the API under /api/v1 (OpenAPI at /api/v1/docs); with --app, approvals resume runs."""
    try:
        import uvicorn

        from proctor.server.app import create_app
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the service needs the server extra ({exc.name} is missing): "
            "pip install 'proctor[server]'"
        ) from exc
    rt = runtime(app_ref)
    try:
        uvicorn.run(create_app(rt, resume_runs=app_ref is not None), host=host, port=port)
    finally:
        rt.close()
