"""Shared fixtures: a store on SQLite and, where a server answers, on PostgreSQL; the shop
the runtime's tests govern (``env``)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.shop import Env

POSTGRES_URL = os.environ.get(
    "PROCTOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("PROCTOR_REQUIRE_POSTGRES") == "1"


def _postgres_available() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        engine.dispose()
    except Exception as exc:  # any failure to connect means "no server here"
        return f"{type(exc).__name__}: {exc}"
    return None


_PG_PROBLEM: str | bool | None = False  # False until probed


def postgres_url_for_test() -> Iterator[str]:
    """A fresh schema on the PostgreSQL server for one test, dropped afterwards."""
    global _PG_PROBLEM
    if _PG_PROBLEM is False:
        _PG_PROBLEM = _postgres_available()
    if _PG_PROBLEM:
        message = f"PostgreSQL at {POSTGRES_URL} is not reachable ({_PG_PROBLEM})"
        if REQUIRE_POSTGRES:
            pytest.fail(message + "; PROCTOR_REQUIRE_POSTGRES=1 makes this a failure")
        pytest.skip(message)
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The database URL of a fresh, empty store on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'proctor.db'}"
    else:
        yield from postgres_url_for_test()


@pytest.fixture
def env(tmp_path: Path, db_url: str) -> Iterator[Env]:
    """The shop on a fresh store; ``env.runtime()`` builds a runtime on it."""
    e = Env(tmp_path, db_url)
    yield e
    e.close()


@pytest.fixture
def make_env(tmp_path: Path, db_url: str) -> Iterator[Callable[[], Env]]:
    """Another ``Env`` on the same folder and store, as another process would see them."""
    made: list[Env] = []

    def make() -> Env:
        made.append(Env(tmp_path, db_url))
        return made[-1]

    yield make
    for e in made:
        e.close()
