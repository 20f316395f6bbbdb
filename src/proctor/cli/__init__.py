"""The ``proctor`` command."""

from proctor.cli.main import app, main

__all__ = ["app", "main"]
