"""The durable queue: deliveries and jobs, leases, retries, idempotency, one writer.

The contract tests (`queue_store`) run against both backends, SQLite and a real PostgreSQL
server; the tests of SQLite's own machinery (WAL, the writer thread) use `sqlite_store`."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.queue import schema as queue_schema
from bot.queue import writer as queue_writer
from bot.queue.records import (
    Classification,
    Delivery,
    DeliveryStatus,
    JobRetry,
    JobStatus,
    LeaseLost,
    StoreError,
    UnitOfWork,
)
from bot.queue.schema import DB_FILENAME
from bot.queue.sqlite_store import SqliteQueueStore
from tests.queue_backends import BACKENDS, AnyStore, IntegrityErrors, execute, open_store, rows

LEASE = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


RETRY = JobRetry(max_attempts=3, base_delay=10, max_delay=100)


@pytest.fixture(params=BACKENDS)
def queue_store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[AnyStore]:
    s = open_store(request, tmp_path / "data", clock=clock, delivery_retry=RETRY,
                   job_retry=RETRY)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: Clock) -> Iterator[SqliteQueueStore]:
    s = SqliteQueueStore.open(tmp_path / "data", clock=clock, delivery_retry=RETRY,
                              job_retry=RETRY)
    yield s
    s.close()


def delivery(n: int = 1, event: str = "issues") -> Delivery:
    return Delivery(f"d-{n}", event, b'{"action":"opened"}')


# -- deliveries ----------------------------------------------------------------------------


async def test_a_delivery_is_stored_once_whatever_the_redeliveries(queue_store: AnyStore) -> None:
    assert await queue_store.insert_delivery(delivery(1)) is True
    assert await queue_store.insert_delivery(delivery(1)) is False
    assert rows(queue_store, "SELECT delivery_id, status FROM deliveries") == [("d-1", "pending")]
    stored = await queue_store.get_delivery("d-1")
    assert stored is not None and stored.body == b'{"action":"opened"}'


async def test_redeliveries_at_once_store_one(queue_store: AnyStore) -> None:
    results = await asyncio.gather(*(queue_store.insert_delivery(delivery(n // 3)) for n in range(9)))
    assert [results[i:i + 3].count(True) for i in (0, 3, 6)] == [1, 1, 1]
    if isinstance(queue_store, SqliteQueueStore):  # one batch: the first of it is stored
        assert results == [True, False, False] * 3
    assert rows(queue_store, "SELECT delivery_id FROM deliveries ORDER BY delivery_id") == [
        ("d-0",),
        ("d-1",),
        ("d-2",),
    ]
    assert rows(queue_store, "SELECT COUNT(*) FROM delivery_bodies") == [(3,)]


async def test_bodies_are_stored_deflated_and_come_back_exact(queue_store: AnyStore) -> None:
    body = json.dumps({"text": "x" * 10_000, "emoji": "✓"}).encode()
    await queue_store.insert_delivery(Delivery("big", "issues", body))
    [(encoding, size)] = rows(queue_store, "SELECT encoding, LENGTH(body) FROM delivery_bodies")
    assert encoding == "zlib" and size < len(body) // 10
    stored = await queue_store.get_delivery("big")
    assert stored is not None and stored.body == body


async def test_the_database_is_durable_wal_with_full_sync(sqlite_store: SqliteQueueStore) -> None:
    assert rows(sqlite_store, "PRAGMA journal_mode") == [("wal",)]
    assert rows(sqlite_store, "PRAGMA synchronous") == [(2,)]  # FULL


async def test_unbroken_writes_keep_the_log_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpointer thread waits for a quiet moment that never comes; the writer
    checkpoints itself between batches once the log passes its bound, and the log
    restarts from the beginning instead of growing with every write."""
    monkeypatch.setattr(queue_writer, "CHECKPOINT_QUIET_SECONDS", 3600.0)
    monkeypatch.setattr(queue_writer, "CHECKPOINT_WAL_BYTES", 256 * 1024)
    monkeypatch.setattr(queue_schema, "WAL_SIZE_LIMIT", 64 * 1024)
    queue_store = SqliteQueueStore.open(tmp_path)
    wal = tmp_path / f"{DB_FILENAME}-wal"
    largest = 0
    try:
        for wave in range(20):
            bodies = [os.urandom(3000).hex().encode() for _ in range(20)]  # barely deflates
            await asyncio.gather(*(
                queue_store.insert_delivery(Delivery(f"w{wave}-{i}", "issues", b'{"x":"%s"}' % body))
                for i, body in enumerate(bodies)
            ))
            largest = max(largest, wal.stat().st_size)
        assert rows(queue_store, "SELECT COUNT(*) FROM deliveries") == [(400,)]
    finally:
        queue_store.close()
    # 400 deliveries of about 3 kB deflated wrote well over a megabyte of log; one batch
    # (at most 20 deliveries here) may go past the bound before the writer checkpoints.
    assert largest < 256 * 1024 + 40 * 4096 * 4
    assert queue_schema.WAL_SIZE_LIMIT < queue_writer.CHECKPOINT_WAL_BYTES


async def test_what_was_stored_is_there_after_a_reopen(tmp_path: Path) -> None:
    first = SqliteQueueStore.open(tmp_path)
    await first.insert_delivery(delivery(1))
    first.close()
    with sqlite3.connect(tmp_path / DB_FILENAME) as conn:
        assert conn.execute("SELECT delivery_id FROM deliveries").fetchall() == [("d-1",)]
    second = SqliteQueueStore.open(tmp_path)
    assert await second.insert_delivery(delivery(1)) is False
    second.close()


async def test_claims_go_oldest_first_under_a_lease(queue_store: AnyStore, clock: Clock) -> None:
    for n in (1, 2):
        await queue_store.insert_delivery(delivery(n))
    first = await queue_store.claim_delivery("w1", LEASE)
    second = await queue_store.claim_delivery("w2", LEASE)
    assert first is not None and second is not None
    assert (first.delivery_id, second.delivery_id) == ("d-1", "d-2")
    assert first.status is DeliveryStatus.PROCESSING and first.attempts == 1
    assert first.lease_owner == "w1" and first.lease_expires == clock.now + LEASE
    assert await queue_store.claim_delivery("w3", LEASE) is None


async def test_finishing_marks_done_and_commits_the_handlers_jobs(queue_store: AnyStore) -> None:
    await queue_store.insert_delivery(delivery(1))
    claim = await queue_store.claim_delivery("w1", LEASE)
    assert claim is not None
    unit = UnitOfWork()
    unit.enqueue_job("run", {"pr": 12}, key="pr:octo/repo#12")
    status = await queue_store.finish_delivery(claim, "w1", [("mod.handler", unit)], [])
    assert status is DeliveryStatus.DONE
    stored = await queue_store.get_delivery("d-1")
    assert stored is not None and stored.status is DeliveryStatus.DONE
    assert stored.handlers_done == {"mod.handler"} and stored.lease_owner is None
    [job] = await queue_store.list_jobs()
    assert (job.kind, job.payload, job.key, job.origin) == (
        "run",
        {"pr": 12},
        "pr:octo/repo#12",
        "delivery:d-1",
    )


async def test_an_expired_lease_is_taken_up_and_the_late_finisher_writes_nothing(
    queue_store: AnyStore, clock: Clock
) -> None:
    await queue_store.insert_delivery(delivery(1))
    stale = await queue_store.claim_delivery("crashed", LEASE)
    assert stale is not None
    clock.now += LEASE + 1
    fresh = await queue_store.claim_delivery("w2", LEASE)
    assert fresh is not None and fresh.delivery_id == "d-1" and fresh.attempts == 2
    unit = UnitOfWork()
    unit.enqueue_job("run")
    with pytest.raises(LeaseLost):
        await queue_store.finish_delivery(stale, "crashed", [("mod.handler", unit)], [])
    assert await queue_store.list_jobs() == []
    assert await queue_store.finish_delivery(fresh, "w2", [], []) is DeliveryStatus.DONE


async def test_start_up_recovery_counts_what_a_crash_left(queue_store: AnyStore, clock: Clock) -> None:
    await queue_store.insert_delivery(delivery(1))
    await queue_store.enqueue_job("run")
    assert await queue_store.claim_delivery("crashed", LEASE) is not None
    assert await queue_store.claim_job("crashed", {"run"}, LEASE) is not None
    assert await queue_store.recover_expired() == (0, 0)  # still leased
    clock.now += LEASE + 1
    assert await queue_store.recover_expired() == (1, 1)
    stored = await queue_store.get_delivery("d-1")
    assert stored is not None and stored.status is DeliveryStatus.PENDING
    assert stored.last_error is not None and "lease expired" in stored.last_error


async def test_a_failing_delivery_is_retried_with_back_off_then_failed(
    queue_store: AnyStore, clock: Clock
) -> None:
    await queue_store.insert_delivery(delivery(1))
    for attempt in (1, 2):
        claim = await queue_store.claim_delivery("w", LEASE)
        assert claim is not None and claim.attempts == attempt
        status = await queue_store.finish_delivery(claim, "w", [], [f"boom {attempt}"])
        assert status is DeliveryStatus.PENDING
        assert await queue_store.claim_delivery("w", LEASE) is None  # backing off
        clock.now += 10 * 2 ** (attempt - 1)
    claim = await queue_store.claim_delivery("w", LEASE)
    assert claim is not None and claim.attempts == 3
    assert await queue_store.finish_delivery(claim, "w", [], ["boom 3"]) is DeliveryStatus.FAILED
    stored = await queue_store.get_delivery("d-1")
    assert stored is not None and stored.status is DeliveryStatus.FAILED
    assert stored.last_error == "boom 3"
    clock.now += 1000
    assert await queue_store.claim_delivery("w", LEASE) is None


async def test_a_retry_keeps_what_the_handlers_that_succeeded_did(
    queue_store: AnyStore, clock: Clock
) -> None:
    await queue_store.insert_delivery(delivery(1))
    claim = await queue_store.claim_delivery("w", LEASE)
    assert claim is not None
    ok = UnitOfWork()
    ok.enqueue_job("run")
    await queue_store.finish_delivery(claim, "w", [("mod.ok", ok)], ["mod.bad: boom"])
    clock.now += 10
    retry = await queue_store.claim_delivery("w", LEASE)
    assert retry is not None and retry.handlers_done == {"mod.ok"}
    await queue_store.finish_delivery(retry, "w", [("mod.bad", UnitOfWork())], [])
    assert len(await queue_store.list_jobs()) == 1
    stored = await queue_store.get_delivery("d-1")
    assert stored is not None and stored.handlers_done == {"mod.ok", "mod.bad"}


async def test_a_delivery_whose_worker_keeps_dying_ends_failed(queue_store: AnyStore, clock: Clock) -> None:
    await queue_store.insert_delivery(delivery(1))
    for _ in range(3):
        assert await queue_store.claim_delivery("dies", LEASE) is not None
        clock.now += LEASE + 1
    assert await queue_store.claim_delivery("w", LEASE) is None
    stored = await queue_store.get_delivery("d-1")
    assert stored is not None and stored.status is DeliveryStatus.FAILED


async def test_a_released_delivery_goes_back_without_counting_the_try(queue_store: AnyStore) -> None:
    await queue_store.insert_delivery(delivery(1))
    claim = await queue_store.claim_delivery("w", LEASE)
    assert claim is not None
    assert await queue_store.release_delivery(claim, "w") is True
    again = await queue_store.claim_delivery("w", LEASE)
    assert again is not None and again.attempts == 1


async def test_a_lease_is_renewed_only_by_its_holder(queue_store: AnyStore, clock: Clock) -> None:
    await queue_store.insert_delivery(delivery(1))
    claim = await queue_store.claim_delivery("w", LEASE)
    assert claim is not None
    clock.now += LEASE - 1
    assert await queue_store.renew_delivery(claim, "w", LEASE) is True
    clock.now += LEASE - 1
    assert await queue_store.claim_delivery("other", LEASE) is None  # renewed: still held
    assert await queue_store.renew_delivery(claim, "other", LEASE) is False


async def test_a_nul_in_a_payloads_fields_or_an_error_loses_nothing(queue_store: AnyStore) -> None:
    """JSON allows "\u0000" and SQLite stores it; PostgreSQL's text cannot hold it, so the
    PostgreSQL store replaces it instead of failing to record the outcome."""
    await queue_store.insert_delivery(delivery(1))
    claim = await queue_store.claim_delivery("w", LEASE)
    assert claim is not None
    status = await queue_store.finish_delivery(
        claim, "w", [], ["boom\x00here"], permanent=True,
        classification=Classification("open\x00ed", 9, "octo/re\x00po"))
    assert status is DeliveryStatus.FAILED
    stored = await queue_store.get_delivery("d-1")
    assert stored is not None and stored.installation_id == 9
    assert (stored.last_error or "").startswith("boom") and (stored.last_error or "").endswith("here")
    assert (stored.repository or "").startswith("octo/re") and (stored.action or "").endswith("ed")
    await queue_store.enqueue_job("run")
    job = await queue_store.claim_job("w", {"run"}, LEASE)
    assert job is not None
    assert await queue_store.fail_job(job, "w", "no\x00pe", retry=False) is JobStatus.FAILED
    [failed] = await queue_store.list_jobs(status=JobStatus.FAILED)
    assert (failed.last_error or "").startswith("no") and (failed.last_error or "").endswith("pe")


# -- jobs ----------------------------------------------------------------------------------


async def test_the_same_logical_job_is_never_enqueued_twice(queue_store: AnyStore) -> None:
    first = await queue_store.enqueue_job("run", {"a": 1}, idempotency_key="run:octo/repo#1@abc")
    second = await queue_store.enqueue_job("run", {"a": 2}, idempotency_key="run:octo/repo#1@abc")
    assert first.created and not second.created and first.job_id == second.job_id
    unit = UnitOfWork()
    unit.enqueue_job("run", idempotency_key="run:octo/repo#1@abc")
    await queue_store.insert_delivery(delivery(1))
    claim = await queue_store.claim_delivery("w", LEASE)
    assert claim is not None
    await queue_store.finish_delivery(claim, "w", [("h", unit)], [])
    [job] = await queue_store.list_jobs()
    assert job.payload == {"a": 1}
    # Without an idempotency key, each enqueue is a new job.
    a = await queue_store.enqueue_job("note")
    b = await queue_store.enqueue_job("note")
    assert a.job_id != b.job_id


async def test_jobs_sharing_a_key_run_one_at_a_time_in_order(queue_store: AnyStore) -> None:
    a = await queue_store.enqueue_job("run", key="pr:o/r#1")
    b = await queue_store.enqueue_job("run", key="pr:o/r#1")
    other = await queue_store.enqueue_job("run", key="pr:o/r#2")
    free = await queue_store.enqueue_job("run")
    first = await queue_store.claim_job("w1", {"run"}, LEASE)
    second = await queue_store.claim_job("w2", {"run"}, LEASE)
    third = await queue_store.claim_job("w3", {"run"}, LEASE)
    assert [j.id if j else None for j in (first, second, third)] == [
        a.job_id,
        other.job_id,
        free.job_id,
    ]
    assert await queue_store.claim_job("w4", {"run"}, LEASE) is None  # b waits for a
    assert first is not None
    await queue_store.complete_job(first, "w1")
    fourth = await queue_store.claim_job("w4", {"run"}, LEASE)
    assert fourth is not None and fourth.id == b.job_id


async def test_the_database_refuses_two_running_jobs_for_one_key(queue_store: AnyStore) -> None:
    await queue_store.enqueue_job("run", key="k")
    await queue_store.enqueue_job("run", key="k")
    with pytest.raises(IntegrityErrors):
        execute(queue_store, "UPDATE jobs SET status = 'running'")


async def test_only_registered_kinds_are_claimed(queue_store: AnyStore) -> None:
    await queue_store.enqueue_job("unknown")
    assert await queue_store.claim_job("w", {"run"}, LEASE) is None
    assert await queue_store.claim_job("w", set(), LEASE) is None
    [job] = await queue_store.list_jobs(status=JobStatus.PENDING)
    assert job.kind == "unknown"


async def test_a_delayed_job_waits_for_its_time(queue_store: AnyStore, clock: Clock) -> None:
    await queue_store.enqueue_job("run", delay=5)
    assert await queue_store.claim_job("w", {"run"}, LEASE) is None
    clock.now += 5
    assert await queue_store.claim_job("w", {"run"}, LEASE) is not None


async def test_a_crashed_jobs_lease_expires_and_it_runs_again(queue_store: AnyStore, clock: Clock) -> None:
    await queue_store.enqueue_job("run", key="k")
    crashed = await queue_store.claim_job("crashed", {"run"}, LEASE)
    assert crashed is not None
    assert await queue_store.claim_job("w", {"run"}, LEASE) is None
    clock.now += LEASE + 1
    again = await queue_store.claim_job("w", {"run"}, LEASE)
    assert again is not None and again.id == crashed.id and again.attempts == 2
    unit = UnitOfWork()
    unit.enqueue_job("follow-up")
    with pytest.raises(LeaseLost):
        await queue_store.complete_job(crashed, "crashed", unit)
    await queue_store.complete_job(again, "w", unit)
    kinds = sorted((j.kind, j.status) for j in await queue_store.list_jobs())
    assert kinds == [("follow-up", JobStatus.PENDING), ("run", JobStatus.DONE)]
    [follow_up] = await queue_store.list_jobs(kind="follow-up")
    assert follow_up.origin == f"job:{again.id}"


async def test_job_retries_are_bounded_and_backed_off(queue_store: AnyStore, clock: Clock) -> None:
    await queue_store.enqueue_job("run")
    for attempt, delay in ((1, 10), (2, 20)):
        job = await queue_store.claim_job("w", {"run"}, LEASE)
        assert job is not None and job.attempts == attempt
        assert await queue_store.fail_job(job, "w", f"boom {attempt}") is JobStatus.PENDING
        clock.now += delay - 1
        assert await queue_store.claim_job("w", {"run"}, LEASE) is None
        clock.now += 1
    job = await queue_store.claim_job("w", {"run"}, LEASE)
    assert job is not None and job.attempts == 3
    assert await queue_store.fail_job(job, "w", "boom 3") is JobStatus.FAILED
    [failed] = await queue_store.list_jobs(status=JobStatus.FAILED)
    assert failed.last_error == "boom 3"


async def test_a_permanent_failure_is_not_retried(queue_store: AnyStore) -> None:
    await queue_store.enqueue_job("run", max_attempts=10)
    job = await queue_store.claim_job("w", {"run"}, LEASE)
    assert job is not None
    assert await queue_store.fail_job(job, "w", "no", retry=False) is JobStatus.FAILED


async def test_a_crashed_job_that_used_its_attempts_ends_failed(queue_store: AnyStore, clock: Clock) -> None:
    await queue_store.enqueue_job("run", max_attempts=1)
    assert await queue_store.claim_job("crashed", {"run"}, LEASE) is not None
    clock.now += LEASE + 1
    assert await queue_store.claim_job("w", {"run"}, LEASE) is None
    [job] = await queue_store.list_jobs()
    assert job.status is JobStatus.FAILED and "lease expired" in (job.last_error or "")


async def test_a_unit_can_supersede_queued_jobs(queue_store: AnyStore) -> None:
    running = await queue_store.enqueue_job("run", {"head": "older"}, key="pr:o/r#9")
    await queue_store.claim_job("w", {"run"}, LEASE)
    old = await queue_store.enqueue_job("run", {"head": "old"}, key="pr:o/r#1")
    await queue_store.insert_delivery(delivery(1))
    claim = await queue_store.claim_delivery("w", LEASE)
    assert claim is not None
    unit = UnitOfWork()
    unit.cancel_pending_jobs("pr:o/r#1", kind="run")
    unit.cancel_pending_jobs("pr:o/r#9")
    unit.enqueue_job("run", {"head": "new"}, key="pr:o/r#1")
    await queue_store.finish_delivery(claim, "w", [("h", unit)], [])
    cancelled = await queue_store.get_job(old.job_id)
    assert cancelled is not None and cancelled.status is JobStatus.CANCELLED
    still = await queue_store.get_job(running.job_id)
    assert still is not None and still.status is JobStatus.RUNNING
    [new] = await queue_store.list_jobs(key="pr:o/r#1", status=JobStatus.PENDING)
    assert new.payload == {"head": "new"}


async def test_a_released_job_goes_back_without_counting_the_try(queue_store: AnyStore) -> None:
    await queue_store.enqueue_job("run")
    job = await queue_store.claim_job("w", {"run"}, LEASE)
    assert job is not None
    assert await queue_store.release_job(job, "w") is True
    again = await queue_store.claim_job("w", {"run"}, LEASE)
    assert again is not None and again.attempts == 1
    assert await queue_store.renew_job(again, "w", LEASE) is True
    assert await queue_store.renew_job(again, "other", LEASE) is False


def test_a_job_is_checked_where_it_is_made() -> None:
    unit = UnitOfWork()
    with pytest.raises(ValueError):
        unit.enqueue_job("")
    with pytest.raises(TypeError):
        unit.enqueue_job("run", {"x": object()})
    with pytest.raises(ValueError):
        unit.enqueue_job("run", delay=-1)
    with pytest.raises(ValueError):
        unit.enqueue_job("run", max_attempts=0)
    assert unit.jobs == ()


async def test_counts_report_the_depth_of_each_queue(queue_store: AnyStore) -> None:
    for n in (1, 2):
        await queue_store.insert_delivery(delivery(n))
    await queue_store.claim_delivery("w", LEASE)
    await queue_store.enqueue_job("run")
    counts = await queue_store.counts()
    assert counts.deliveries == {"pending": 1, "processing": 1, "failed": 0}
    assert counts.jobs == {"pending": 1, "running": 0, "failed": 0}


# -- the writer thread ---------------------------------------------------------------------


async def test_one_failing_operation_does_not_undo_the_others_in_its_batch(
    sqlite_store: SqliteQueueStore,
) -> None:
    queue_store = sqlite_store
    def boom(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO jobs (kind) VALUES ('half-written')")  # violates NOT NULL

    results = await asyncio.gather(
        *(queue_store.insert_delivery(delivery(n)) for n in range(50)),
        queue_store.call(boom),
        *(queue_store.insert_delivery(delivery(n)) for n in range(50, 100)),
        return_exceptions=True,
    )
    assert isinstance(results[50], sqlite3.IntegrityError)
    assert results[:50] + results[51:] == [True] * 100
    assert rows(queue_store, "SELECT COUNT(*) FROM deliveries") == [(100,)]
    assert rows(queue_store, "SELECT COUNT(*) FROM jobs") == [(0,)]


async def test_a_closed_store_refuses_work(tmp_path: Path) -> None:
    queue_store = SqliteQueueStore.open(tmp_path)
    queue_store.close()
    queue_store.close()  # twice is harmless
    with pytest.raises(StoreError):
        await queue_store.insert_delivery(delivery(1))


def test_a_database_from_a_newer_gwi_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / DB_FILENAME) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError, match="schema version 99"):
        SqliteQueueStore.open(tmp_path)


def test_an_unusable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot open the queue database"):
        SqliteQueueStore.open(blocker / "data")
