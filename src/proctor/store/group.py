"""Group commit: the writes of concurrent runs share one durable commit, off the event loop.

A coroutine hands the store a unit of work (a function of a connection) and awaits
it. Writer threads take every unit waiting, run them in one transaction, each in a
savepoint of its own when there are several (a unit that raises undoes only its own
writes and gets its own error), commit once, and only then release each caller: an
acknowledged write is on disk, and one fsync serves every unit in the batch.

SQLite (``SqliteGroupCommit``): the statements of a batch run on the event loop, on
a connection of their own (each takes microseconds: SQLite writes pages to memory
until the commit), and only the commit, where the fsync happens, runs in a thread.
A writer thread running the statements would hand the GIL back and forth with the
loop on every statement, and wait for it each time the loop is busy. While one
commit is on its way to disk, the next batch gathers. Synchronous writers in other
threads take turns with it through SQLite's own lock.

PostgreSQL (``GroupCommit``) already groups the commits of concurrent connections:
several threads, each with its own connection, batch what they find waiting and let
the server do the rest.

The units of one batch run one after another in one thread, sorted by the key
each caller gives (its tenant) and otherwise in the order they arrived: a tenant's
audit entries are chained in that order, and every commit locks tenants' rows in
the same order, so concurrent commits never deadlock on them.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")
Work = Callable[[sa.Connection], Any]
Begin = Callable[[bool], AbstractContextManager[sa.Connection]]

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
    """Writer threads committing batches of units through ``begin`` (the store's write
    transaction: ``begin(durable)``)."""

    begin: Begin
    writers: int
    _queue: queue.SimpleQueue[_Unit | None] = field(default_factory=queue.SimpleQueue)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    batches: int = 0
    """Transactions committed so far (units per commit = units / batches)."""
    units: int = 0

    async def run(self, work: Callable[[sa.Connection], T], *, durable: bool, order: str) -> T:
        """``work``'s result once its transaction has committed (``durable``: on disk)."""
        if not self._threads:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Unit(work, durable, order, loop, future))
        return await future

    def close(self) -> None:
        """Commit what is queued, then stop the writer threads."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join()

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self.writers:
                thread = threading.Thread(
                    target=self._serve, name=f"proctor-writer-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    unit = self._queue.get_nowait()
                except queue.Empty:
                    break
                if unit is None:
                    stop = True
                    break
                batch.append(unit)
            self._commit([u for u in batch if not u.future.cancelled()])
            if stop:
                return

    def _commit(self, batch: list[_Unit]) -> None:
        if not batch:
            return
        batch.sort(key=lambda u: u.order)  # stable: each key's units keep their order
        try:
            with self.begin(any(u.durable for u in batch)) as conn:
                if len(batch) == 1:
                    batch[0].result = batch[0].work(conn)
                else:
                    for unit in batch:
                        _in_savepoint(conn, unit)
        except BaseException as exc:  # the commit failed: no unit's write is acknowledged
            for unit in batch:
                if unit.error is None:
                    unit.error = exc
        else:
            self.batches += 1
            self.units += len(batch)
        by_loop: dict[asyncio.AbstractEventLoop, list[_Unit]] = {}
        for unit in batch:
            by_loop.setdefault(unit.loop, []).append(unit)
        for loop, units in by_loop.items():
            # A closed loop raises: its caller is gone, and nobody waits any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle, units)


@dataclass
class SqliteGroupCommit:
    """Batches gathered on each event loop, committed on one connection (``connect``), one
    batch at a time across loops; ``durable`` batches with ``synchronous=FULL``."""

    connect: Callable[[], sa.Connection]
    batches: int = 0
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
        sync = "FULL" if any(u.durable for u in batch) else "NORMAL"
        try:
            if sync != self._sync:
                driver.execute(f"PRAGMA synchronous={sync}")
                self._sync = sync
            driver.execute("BEGIN IMMEDIATE")
            try:
                if len(batch) == 1:
                    batch[0].result = batch[0].work(conn)
                else:
                    for unit in batch:
                        _in_savepoint(conn, unit)
            except BaseException:
                if driver.in_transaction:
                    driver.execute("ROLLBACK")
                if conn.in_transaction():
                    conn.rollback()
                raise
            # The fsync, off the loop; the next batch gathers meanwhile.
            await asyncio.to_thread(driver.execute, "COMMIT")
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

    def _connection(self) -> sa.Connection:
        if self._conn is None or self._conn.closed:
            self._conn, self._sync = self.connect(), ""
        return self._conn

    def close(self) -> None:
        with self._turn:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _in_savepoint(conn: sa.Connection, unit: _Unit) -> None:
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute("SAVEPOINT proctor_unit")
    marks = _marks(conn)
    try:
        unit.result = unit.work(conn)
    except BaseException as exc:
        driver.execute("ROLLBACK TO SAVEPOINT proctor_unit")
        _restore(conn, marks)
        unit.error = exc
    driver.execute("RELEASE SAVEPOINT proctor_unit")


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
