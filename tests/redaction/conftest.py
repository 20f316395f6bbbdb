"""The kernel tests' environment: a runtime over SQLite or PostgreSQL, with their tools."""

from tests.kernel.conftest import env  # noqa: F401 - the fixture, reused here
