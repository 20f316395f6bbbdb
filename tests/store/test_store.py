"""The store: migrations match the tables, settings are what they say."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from proctor import StoreError
from proctor.store import Store
from proctor.store.tables import metadata


def test_migrations_create_exactly_the_declared_tables(db_url: str) -> None:
    store = Store(db_url)
    try:
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
        Store(db_url).close()  # a second open finds the schema current and changes nothing
    finally:
        store.close()


def test_sqlite_store_is_wal_with_full_sync(tmp_path: Path) -> None:
    store = Store.at(tmp_path / "nested" / "proctor.db")
    try:
        with store.write() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        with store.write(durable=False) as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        store.close()


def test_a_write_that_fails_leaves_nothing(tmp_path: Path) -> None:
    store = Store.at(tmp_path / "proctor.db")
    try:

        def crash_mid_transaction() -> None:
            with store.write() as conn:
                conn.execute(sa.text("INSERT INTO audit_heads VALUES ('t', 1, 'h')"))
                raise RuntimeError("crash mid-transaction")

        with pytest.raises(RuntimeError):
            crash_mid_transaction()
        with store.read() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM audit_heads")).scalar() == 0
    finally:
        store.close()


def test_an_unreachable_database_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="Check that the database is running"):
        Store("postgresql://nobody@127.0.0.1:1/none")
