"""Group commit: concurrent writers share commits, and each is released only once its own
write is committed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from proctor.store import Store
from proctor.store.tables import audit_heads
from tests.shop import Env


def _insert(tenant: str, fail: bool = False) -> Callable[[sa.Connection], str]:
    def work(conn: sa.Connection) -> str:
        conn.execute(audit_heads.insert().values(tenant=tenant, seq=0, head_hash="h"))
        if fail:
            raise ValueError(f"{tenant} changed its mind")
        return tenant

    return work


def _tenants(store: Store) -> set[str]:
    with store.read() as conn:
        return {t for (t,) in conn.execute(sa.select(audit_heads.c.tenant))}


async def test_concurrent_writes_share_commits_and_a_failing_one_is_undone_alone(
    db_url: str,
) -> None:
    store = Store(db_url)
    try:
        names = [f"t{n}" for n in range(40)]
        results = await asyncio.gather(
            *(store.transact(_insert(n, fail=n == "t7"), order=n) for n in names),
            return_exceptions=True,
        )
        failed = [r for r in results if isinstance(r, BaseException)]
        assert [str(e) for e in failed] == ["t7 changed its mind"]
        assert [r for r in results if not isinstance(r, BaseException)] == [
            n for n in names if n != "t7"
        ]
        assert _tenants(store) == set(names) - {"t7"}
        group = store.group_commit
        assert group.units == 40
        assert group.batches < 40  # callers that waited together were committed together
    finally:
        store.close()


async def test_a_caller_is_released_only_once_its_write_is_committed(db_url: str) -> None:
    store = Store(db_url)
    try:

        async def write_then_look(n: int) -> bool:
            await store.transact(_insert(f"r{n}"), order=f"r{n}")
            return f"r{n}" in _tenants(store)  # seen by a connection of its own

        assert all(await asyncio.gather(*(write_then_look(n) for n in range(20))))
    finally:
        store.close()


async def test_a_durable_write_commits_with_full_sync_even_beside_lazy_ones(
    tmp_path: Path,
) -> None:
    store = Store.at(tmp_path / "proctor.db")
    try:

        def sync_level(conn: sa.Connection) -> int:
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar_one())

        lazy = [store.transact(sync_level, durable=False) for _ in range(5)]
        levels = await asyncio.gather(*lazy, store.transact(sync_level, durable=True))
        assert levels[-1] == 2  # FULL: the fsync happens before the caller goes on
        assert await store.transact(sync_level, durable=False) == 1  # NORMAL when alone
    finally:
        store.close()


async def test_a_write_that_breaks_a_constraint_fails_alone(db_url: str) -> None:
    store = Store(db_url)
    try:
        await store.transact(_insert("dup"), order="dup")
        # Two writers of the same key: the second's insert fails, the first's stands.
        results = await asyncio.gather(
            store.transact(_insert("a"), order="a"),
            store.transact(_insert("dup"), order="dup"),
            return_exceptions=True,
        )
        assert results[0] == "a"
        assert isinstance(results[1], sa.exc.IntegrityError)
        assert _tenants(store) == {"dup", "a"}
    finally:
        store.close()


async def test_concurrent_runs_keep_every_tenant_chain_whole(env: Env) -> None:
    runs = 32
    rt = env.runtime()
    specs = [env.spec(tenant=f"tenant-{n % 3}") for n in range(runs)]

    async def one(n: int) -> int:
        run = await rt.start_run(specs[n])
        for i in range(5):
            await run.call("lookup", {"order_id": f"A-{1 + (i % 2)}"})
        await run.complete()
        return len(run.steps)

    assert await asyncio.gather(*(one(n) for n in range(runs))) == [5] * runs
    report = rt.verify_audit()
    assert report.ok, report
    assert rt.store.group_commit.batches < rt.store.group_commit.units
