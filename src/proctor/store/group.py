"""Group commit: the writes of concurrent runs share one durable commit, off the event loop.

A coroutine hands the store a unit of work (a function of a connection) and awaits
it. The units waiting on an event loop are run together in one transaction, each
in a savepoint of its own when there are several (a unit that raises undoes only
its own writes and gets its own error), and committed once; only then is each
caller released: an acknowledged write is durable, and one fsync serves the batch.

The statements run on the event loop, on a connection kept for this: each takes
microseconds (SQLite writes pages to memory until the commit; a PostgreSQL round
trip on the loopback is as short, and the synchronous driver spends little of the
interpreter on it). Only the commit, where the fsync happens, runs in a thread,
and the next batch gathers meanwhile. Measured on this design's alternatives: a
writer thread running the statements hands the GIL back and forth with the loop on
every statement and waits for it whenever the loop is busy; psycopg's async API
(through SQLAlchemy's asyncio extension) costs about 150 µs of event-loop work per
round trip, more than the round trip itself.

The units of one batch run sorted by the key each caller gives (its tenant), and
otherwise in the order they came: a tenant's audit entries are chained in that
order, and every commit locks tenants' rows in the same order, so commits of
several processes never deadlock on them. Synchronous writers in other threads
take turns with the batches through the database's own locks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
Work = Callable[[sa.Connection], Any]

MAX_BATCH = 256
"""Units committed together at most: bounds what one failed commit takes down."""


@dataclass(eq=False)
class _Unit:
    work: Work
    durable: bool
    order: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


@dataclass
class GroupCommit:
    """Batches gathered on each event loop and committed on one connection (``connect``),
    one batch at a time across loops; a batch with a ``durable`` unit commits synchronously
    to disk (``synchronous=FULL`` on SQLite, a synchronous commit on PostgreSQL)."""

    connect: Callable[[], sa.Connection]
    dialect: str
    prepare: Callable[[sa.Connection, list[str]], None] | None = None
    """On PostgreSQL, run in a thread first with the batch's keys: it takes the rows the
    units will wait for (the tenants' audit chain heads), so while another process
    holds them it is a thread that waits, not the event loop."""
    batches: int = 0
    """Transactions committed so far (units per commit = units / batches)."""
    units: int = 0
    _conn: sa.Connection | None = None
    _sync: str = ""
    _turn: threading.Lock = field(default_factory=threading.Lock)
    _pending: dict[asyncio.AbstractEventLoop, list[_Unit]] = field(default_factory=dict)
    _flushing: dict[asyncio.AbstractEventLoop, asyncio.Task[None]] = field(default_factory=dict)

    async def run(self, work: Callable[[sa.Connection], T], *, durable: bool, order: str) -> T:
        """``work``'s result once its transaction has committed (``durable``: on disk)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        pending = self._pending.get(loop)
        if pending is None:  # no batch is gathering or committing on this loop: start one
            pending = self._pending[loop] = []
            self._flushing[loop] = loop.create_task(self._flush(loop))
        pending.append(_Unit(work, durable, order, loop, future))
        return await future

    async def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            await asyncio.sleep(0)  # let the callers that are ready now join this batch
            while batch := self._take(loop):
                if not self._turn.acquire(blocking=False):  # another loop's batch commits
                    await asyncio.to_thread(self._turn.acquire)
                try:
                    await self._commit(batch)
                finally:
                    self._turn.release()
                _settle(batch)
        finally:
            self._pending.pop(loop, None)
            self._flushing.pop(loop, None)

    def _take(self, loop: asyncio.AbstractEventLoop) -> list[_Unit]:
        """The next units waiting on ``loop`` whose callers still wait."""
        pending = self._pending[loop]
        while pending:
            batch = [u for u in pending[:MAX_BATCH] if not u.future.done()]
            del pending[:MAX_BATCH]
            if batch:
                return batch
        return []

    async def _commit(self, batch: list[_Unit]) -> None:
        batch.sort(key=lambda u: u.order)
        conn = self._connection()
        driver = conn.connection.driver_connection
        assert driver is not None
        try:
            self._begin(driver, any(u.durable for u in batch))
            try:
                if self.prepare is not None and self.dialect != "sqlite":  # one writer there
                    keys = sorted({u.order for u in batch if u.order})
                    await asyncio.to_thread(self.prepare, conn, keys)
                if len(batch) == 1:
                    batch[0].result = batch[0].work(conn)
                else:
                    for unit in batch:
                        _in_savepoint(conn, unit, driver.execute)
            except BaseException:
                self._rollback(conn, driver)
                raise
            # The fsync, off the loop; the next batch gathers meanwhile.
            if self.dialect == "sqlite":
                await asyncio.to_thread(driver.execute, "COMMIT")
            else:
                await asyncio.to_thread(driver.commit)
            if conn.in_transaction():
                conn.commit()  # SQLAlchemy's bookkeeping, and actions queued for after it
        except BaseException as exc:
            for unit in batch:
                if unit.error is None:
                    unit.error = exc
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self.batches += 1
        self.units += len(batch)

    def _begin(self, driver: Any, durable: bool) -> None:
        if self.dialect == "sqlite":
            sync = "FULL" if durable else "NORMAL"
            if sync != self._sync:
                driver.execute(f"PRAGMA synchronous={sync}")
                self._sync = sync
            driver.execute("BEGIN IMMEDIATE")
        elif not durable:  # PostgreSQL opens the transaction with its first statement
            driver.execute("SET LOCAL synchronous_commit TO OFF")

    def _rollback(self, conn: sa.Connection, driver: Any) -> None:
        if self.dialect != "sqlite":
            driver.rollback()
        elif driver.in_transaction:
            driver.execute("ROLLBACK")
        if conn.in_transaction():
            conn.rollback()

    def _connection(self) -> sa.Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn, self._sync = self.connect(), ""
        return self._conn

    def close(self) -> None:
        with self._turn:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _in_savepoint(conn: sa.Connection, unit: _Unit, execute: Callable[[str], Any]) -> None:
    execute("SAVEPOINT proctor_unit")
    marks = _marks(conn)
    try:
        unit.result = unit.work(conn)
    except BaseException as exc:
        execute("ROLLBACK TO SAVEPOINT proctor_unit")
        _restore(conn, marks)
        unit.error = exc
    execute("RELEASE SAVEPOINT proctor_unit")


def _marks(conn: sa.Connection) -> dict[str, int]:
    """How long each list in ``conn.info`` is (actions queued to run after the commit)."""
    return {key: len(value) for key, value in conn.info.items() if isinstance(value, list)}


def _restore(conn: sa.Connection, marks: dict[str, int]) -> None:
    """Forget what a rolled-back unit queued in ``conn.info``: its writes are undone."""
    for key, value in list(_lists(conn)):
        if key in marks:
            del value[marks[key] :]
        else:
            del conn.info[key]


def _lists(conn: sa.Connection) -> Iterator[tuple[str, list[Any]]]:
    for key, value in conn.info.items():
        if isinstance(value, list):
            yield key, value


def _settle(units: list[_Unit]) -> None:
    for unit in units:
        if unit.future.done():  # the caller was cancelled
            continue
        if unit.error is not None:
            unit.future.set_exception(unit.error)
        else:
            unit.future.set_result(unit.result)
