"""What only the PostgreSQL backend has to prove: migrations that several processes run at once,
claims that several processes race on, wake-ups across processes, and an outage of the server.
The rest of its contract is tested with SQLite's by the same tests (tests/test_queue.py,
tests/test_queue_workers.py, tests/test_queue_index.py)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import psycopg
import pytest

from bot.queue.pg_schema import SCHEMA_VERSION
from bot.queue.pg_store import PostgresQueueStore
from bot.queue.records import Delivery, Job, JobStatus, StoreError, UnitOfWork
from bot.queue.workers import WorkerConfig, Workers
from tests.pg_server import PgServer, free_port
from tests.queue_backends import rows


def test_stores_opening_an_empty_database_at_once_migrate_it_once(pg_empty_url: str) -> None:
    """Each migration runs under an advisory lock and is recorded in its own transaction:
    the first process applies it, the others wait and find it done."""
    barrier = threading.Barrier(4)
    opened: list[PostgresQueueStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        barrier.wait()
        try:
            opened.append(PostgresQueueStore.open(pg_empty_url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert len(opened) == 4
        versions = rows(opened[0], "SELECT version FROM schema_migrations ORDER BY version")
        assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
        assert asyncio.run(opened[1].enqueue_job("run")).created
    finally:
        for store in opened:
            store.close()


def test_a_database_from_a_newer_gwi_is_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (99, 'future')")
    with pytest.raises(StoreError, match="schema version 99; this gwi knows"):
        PostgresQueueStore.open(pg_url)


def test_an_unreachable_database_is_a_clear_error_without_the_password() -> None:
    started = time.monotonic()
    with pytest.raises(StoreError, match="cannot reach the queue database") as caught:
        PostgresQueueStore.open(f"postgresql://gwi:hunter22@127.0.0.1:{free_port()}/gwi")
    assert "hunter22" not in str(caught.value) and "gwi:***@" in str(caught.value)
    assert time.monotonic() - started < 30


def test_a_closed_store_refuses_work(pg_url: str) -> None:
    store = PostgresQueueStore.open(pg_url)
    store.close()
    store.close()  # twice is harmless
    with pytest.raises(StoreError):
        asyncio.run(store.insert_delivery(Delivery("d-1", "issues", b"{}")))


async def test_processes_racing_for_jobs_take_each_once_and_one_per_key(pg_url: str) -> None:
    """Two stores (two processes' pools) and many claimers: SKIP LOCKED hands each job to one
    claimer, and a key never has two running jobs."""
    first = PostgresQueueStore.open(pg_url)
    second = PostgresQueueStore.open(pg_url)
    try:
        for n in range(60):
            await first.enqueue_job("run", {"n": n}, key=f"k{n % 6}" if n % 2 else None)
        taken: list[int] = []
        running_keys: set[str] = set()
        overlaps: list[str] = []

        async def claimer(store: PostgresQueueStore, name: str) -> None:
            while True:
                job = await store.claim_job(name, {"run"}, 30)
                if job is None:
                    if len(taken) == 60:
                        return
                    await asyncio.sleep(0.005)
                    continue
                taken.append(job.id)
                if job.key is not None:
                    if job.key in running_keys:
                        overlaps.append(job.key)
                    running_keys.add(job.key)
                await asyncio.sleep(0.002)
                running_keys.discard(job.key or "")
                await store.complete_job(job, name)

        async with asyncio.timeout(60):
            await asyncio.gather(*(claimer(store, f"w{i}-{id(store)}")
                                   for i in range(4) for store in (first, second)))
        assert sorted(taken) == sorted(set(taken)) and len(taken) == 60
        assert overlaps == []
        assert {job.status for job in await first.list_jobs()} == {JobStatus.DONE}
    finally:
        first.close()
        second.close()


async def test_a_job_enqueued_by_another_process_wakes_the_workers_at_once(pg_url: str) -> None:
    """LISTEN/NOTIFY: the workers poll only every 30 s here, yet run another store's job
    within moments of its commit."""
    worker_store = PostgresQueueStore.open(pg_url)
    web_store = PostgresQueueStore.open(pg_url)
    ran = asyncio.Event()

    async def handler(job: Job, unit: UnitOfWork, **_: Any) -> None:
        ran.set()

    from gidgethub import routing

    workers = Workers(worker_store, routing.Router(), {"run": handler},
                      WorkerConfig(delivery_workers=1, job_workers=1, poll_interval=30))
    try:
        await workers.start()
        await asyncio.sleep(0.5)  # the workers have looked once and wait
        await web_store.enqueue_job("run")
        async with asyncio.timeout(5):
            await ran.wait()
    finally:
        await workers.stop()
        worker_store.close()
        web_store.close()


async def test_an_outage_refuses_work_then_what_was_committed_is_there(
    pg_server: PgServer, pg_url: str
) -> None:
    store = PostgresQueueStore.open(pg_url)
    try:
        assert await store.insert_delivery(Delivery("before", "issues", b"{}"))
        await asyncio.to_thread(pg_server.stop)
        try:
            started = time.monotonic()
            with pytest.raises(StoreError):
                await store.insert_delivery(Delivery("during", "issues", b"{}"))
            assert time.monotonic() - started < 15
        finally:
            await asyncio.to_thread(pg_server.start)
        assert await store.insert_delivery(Delivery("after", "issues", b"{}"))
        assert await store.insert_delivery(Delivery("before", "issues", b"{}")) is False
        assert await store.get_delivery("during") is None
    finally:
        store.close()


def test_a_missing_server_skips_here_and_fails_where_it_is_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.pg_server import REQUIRE, _missing

    monkeypatch.delenv(REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="install Debian's `postgresql` package"):
        _missing("initdb is not installed")
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="GWI_REQUIRE_POSTGRES=1 says"):
        _missing("initdb is not installed")
