"""The store: migrations match the tables, settings are what they say."""

from __future__ import annotations

import threading
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


def test_canonical_json_is_the_standard_librarys_compact_sorted_form() -> None:
    import json
    from datetime import UTC, datetime
    from decimal import Decimal

    from proctor.jsonvalue import canonical_json

    values = [
        {"b": 1, "a": [1, 2.5, "é", None, True], "d": Decimal("1.10")},
        {1: "int keys become strings"},
        [2**70],  # beyond orjson's 64 bits: the fallback writes the same form
        {"when": datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)},
    ]
    for value in values:
        expected = json.dumps(
            value,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            default=lambda o: str(o) if isinstance(o, Decimal) else o.isoformat(),
        )
        assert canonical_json(value) == expected


def test_many_threads_writing_never_exhaust_the_pool(db_url: str) -> None:
    # A server answers from many threads; each one writing must not keep a connection
    # of its own, or readers starve once the pool (5 + 10 overflow) is held by writers.
    store = Store(db_url)
    store.engine.pool.timeout = 2  # type: ignore[attr-defined]  # a starved read fails fast
    failures: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                with store.write() as conn:
                    conn.execute(sa.text("SELECT 1"))
                with store.write(durable=False) as conn:
                    conn.execute(sa.text("SELECT 1"))
                with store.read() as conn:
                    conn.execute(sa.text("SELECT 1"))
        except BaseException as exc:  # reported below, with the thread's error
            failures.append(exc)

    try:
        threads = [threading.Thread(target=work) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        with store.read() as conn:  # and the pool still answers afterwards
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
    finally:
        store.close()
