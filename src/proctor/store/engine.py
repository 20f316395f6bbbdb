"""Opening the database: SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event

from proctor.errors import StoreError, missing_extra
from proctor.store.group import GroupCommit

T = TypeVar("T")

_MIGRATIONS = "proctor.store:migrations"
# Serialises migrations when several PostgreSQL workers start at once.
_MIGRATION_LOCK_KEY = 0x70726F63746F72
_READ_ONLY = "proctor.read_only"


SCHEMES = ("sqlite", "postgresql+psycopg")
"""The database URL schemes proctor stores in (``postgres://`` and ``postgresql://``
are read as ``postgresql+psycopg://``)."""
_SUPPORTED = (
    "Set PROCTOR_DB_URL to sqlite:///PATH (the embedded store) or "
    "postgresql://USER@HOST:PORT/DATABASE (needs proctor[postgres]); no other database is "
    "supported."
)


def _shown(url: str) -> str:
    """The URL without its password, fit for an error message."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return url


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def normalise_url(url: str) -> str:
    """Accept the usual PostgreSQL spellings and use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Driver-level autocommit; the "begin" hook below issues BEGIN IMMEDIATE so a
    # writer takes the lock up front instead of failing to upgrade it later.
    dbapi_conn.isolation_level = None
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_on_begin(conn: sa.Connection) -> None:
    # Straight to the driver: this runs twice on every governed call. Readers take
    # no lock up front, so they never wait for a writer (WAL lets them read alongside).
    driver = conn.connection.driver_connection
    assert driver is not None
    if not driver.in_transaction:  # a writer's driver-level transaction is already open
        driver.execute("BEGIN" if conn.info.get(_READ_ONLY) else "BEGIN IMMEDIATE")


class _Writer:
    """A long-lived SQLite connection and its transactions."""

    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    @contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        # The transaction is the driver's own: SQLAlchemy's bookkeeping around it
        # costs as much as a statement, twice per governed call. Core statements run
        # inside it still work: SQLAlchemy's autobegin finds the driver in a
        # transaction (see _sqlite_on_begin) and is closed after it.
        driver = self.conn.connection.driver_connection
        assert driver is not None
        driver.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            if driver.in_transaction:
                driver.execute("ROLLBACK")
            if self.conn.in_transaction():
                self.conn.rollback()
            raise
        driver.execute("COMMIT")
        if self.conn.in_transaction():
            self.conn.commit()  # only SQLAlchemy's bookkeeping: the driver has committed


class Store:
    """The one database of a proctor deployment.

    ``write(durable=True)`` commits synchronously to disk (fsync on SQLite,
    synchronous commit on PostgreSQL). ``write(durable=False)`` lets the commit
    reach the disk with the next durable one: it survives a process crash, and
    after a power loss the records it held are reported as lost outcomes rather
    than silently trusted.

    ``transact`` is the same transaction for coroutines, off the event loop's way:
    committed together with other coroutines' work (``proctor.store.group``).
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = normalise_url(url)
        scheme = self.url.partition(":")[0]
        if scheme not in SCHEMES:
            raise StoreError(
                f"cannot open the store at {_shown(self.url)!r}: the scheme {scheme!r} is not "
                f"supported. {_SUPPORTED}"
            )
        try:
            self.engine = sa.create_engine(self.url)
        except ModuleNotFoundError as exc:
            raise missing_extra("postgres", exc.name, "a postgresql:// store") from exc
        except sa.exc.ArgumentError as exc:
            raise StoreError(
                f"cannot open the store at {_shown(self.url)!r}: {exc}. {_SUPPORTED}"
            ) from exc
        self.dialect = self.engine.dialect.name
        # SQLite has one writer at a time: one writer connection per durability level,
        # shared by every thread, taken in turn (a lock, not the database's busy wait).
        self._writers: dict[bool, _Writer] = {}
        self._write_lock = threading.RLock()
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        # Concurrent coroutines' writes, committed together (see proctor.store.group).
        self._group = GroupCommit(self.engine.connect, self.dialect)
        if migrate:
            self.migrate()

    @classmethod
    def at(cls, path: Path) -> Store:
        """An embedded SQLite store in ``path``, created with its folder if missing."""
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(sqlite_url(path))

    def close(self) -> None:
        self._group.close()
        with self._write_lock:
            for writer in self._writers.values():
                writer.conn.close()
            self._writers.clear()
        self.engine.dispose()

    # -- transactions -------------------------------------------------------------

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[sa.Connection]:
        """A write transaction; committed on exit, rolled back on error."""
        if self.dialect == "sqlite":
            with self._write_lock, self._sqlite_writer(durable).begin() as conn:
                yield conn
            return
        with self.engine.connect() as conn, conn.begin():
            if not durable:
                conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
            yield conn

    async def transact(
        self, work: Callable[[sa.Connection], T], *, durable: bool = True, order: str = ""
    ) -> T:
        """``work(conn)`` in a write transaction, off the event loop; its result once the
        transaction has committed (``durable``: on disk). Work that raises is undone, and
        its error raised here; other callers' work in the same commit stands. ``order``
        (the tenant whose rows it writes): the work of one commit runs sorted by it."""
        return await self._group.run(work, durable=durable, order=order)

    @property
    def group_commit(self) -> GroupCommit:
        """The writers behind ``transact`` (their counts show how well commits group)."""
        return self._group

    def _sqlite_writer(self, durable: bool) -> _Writer:
        # Kept open rather than checked out per transaction: no pool round trip and no
        # re-setting the synchronous mode on the hot path. Two connections at most, so
        # a server's many threads never hold the pool's connections (readers need them).
        writer = self._writers.get(durable)
        if writer is None or writer.conn.closed:
            conn = self.engine.connect()
            if not durable:
                self._sqlite_synchronous(conn, "NORMAL")
            writer = self._writers[durable] = _Writer(conn)
        return writer

    @contextmanager
    def read(self) -> Iterator[sa.Connection]:
        """A read transaction: a consistent snapshot, no writes."""
        with self.engine.connect() as conn:
            conn.info[_READ_ONLY] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop(_READ_ONLY, None)

    @staticmethod
    def _sqlite_synchronous(conn: sa.Connection, level: str) -> None:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.execute(f"PRAGMA synchronous={level}")

    # -- schema -------------------------------------------------------------------

    def _alembic_config(self, conn: sa.Connection) -> Config:
        cfg = Config()
        cfg.set_main_option("script_location", _MIGRATIONS)
        cfg.attributes["connection"] = conn
        return cfg

    def migrate(self) -> None:
        """Bring the schema to the newest revision (a no-op when it is there)."""
        try:
            with self.engine.connect() as conn:
                cfg = self._alembic_config(conn)
                head = ScriptDirectory.from_config(cfg).get_current_head()
                if MigrationContext.configure(conn).get_current_revision() == head:
                    return
                conn.rollback()
                with conn.begin():
                    if self.dialect == "postgresql":
                        conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
                    command.upgrade(cfg, "head")
        except sa.exc.OperationalError as exc:
            raise StoreError(
                f"cannot reach the store at {self.engine.url.render_as_string()}: {exc.orig}. "
                "Check that the database is running and PROCTOR_DB_URL is right."
            ) from exc
