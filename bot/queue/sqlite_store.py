"""The queue in one SQLite file: deliveries and jobs under leases, on the writer thread.

Deliveries and jobs are claimed with a lease (owner + expiry). Finishing checks that the
caller still holds the lease and applies the handler's :class:`UnitOfWork` (the jobs it
enqueued) in the same transaction that marks the item finished, so from the app's point
of view each is processed exactly once: a crash before that commit leaves no trace but an
expired lease, which the next claim takes up again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from bot.queue.interface import Clock, QueueStore, RedeliveryLedger, RunIndex
from bot.queue.pr_index import SqliteRunIndex
from bot.queue.records import (
    DEFAULT_RETRY,
    Classification,
    Delivery,
    DeliveryRecord,
    DeliveryStatus,
    EnqueueResult,
    Job,
    JobRetry,
    JobStatus,
    LeaseLost,
    QueueCounts,
    UnitOfWork,
    job_spec,
)
from bot.queue.redelivery import SqliteRedeliveryLedger
from bot.queue.schema import DELIVERY_COLUMNS, JOB_COLUMNS, connect
from bot.queue.sqlite_admin import SqliteAdmin
from bot.queue.sqlite_ops import (
    DELIVERIES,
    JOBS,
    Leased,
    apply_unit,
    check_job_lease,
    count,
    delivery_from_row,
    expire_delivery_leases,
    expire_job_leases,
    insert_job,
    job_from_row,
    where_clause,
)
from bot.queue.writer import Writer

T = TypeVar("T")


class SqliteQueueStore(SqliteAdmin, QueueStore):
    """The queue database. Open it with :meth:`open`; every method is safe from any task.

    ``clock`` gives the time used for leases, delays and timestamps (tests pass their own).
    """

    def __init__(
        self,
        path: Path,
        connection: sqlite3.Connection,
        *,
        clock: Clock = time.time,
        delivery_retry: JobRetry = DEFAULT_RETRY,
        job_retry: JobRetry = DEFAULT_RETRY,
    ) -> None:
        self.path = path
        self.clock = clock
        self.delivery_retry = delivery_retry
        self.job_retry = job_retry
        self._writer = Writer(path, connection)
        self._index = SqliteRunIndex(self._writer)
        self._ledger = SqliteRedeliveryLedger(self._writer)

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        clock: Clock = time.time,
        delivery_retry: JobRetry = DEFAULT_RETRY,
        job_retry: JobRetry = DEFAULT_RETRY,
    ) -> SqliteQueueStore:
        """Open (creating if needed) ``<data_dir>/queue.sqlite3`` and start its writer."""
        path, conn = connect(data_dir)
        return cls(path, conn, clock=clock, delivery_retry=delivery_retry, job_retry=job_retry)

    def close(self) -> None:
        self._writer.close()

    def run_index(self) -> RunIndex:
        return self._index

    def redelivery_ledger(self) -> RedeliveryLedger:
        return self._ledger

    async def busy_keys(self) -> set[str]:
        return await self.call(lambda conn: {row[0] for row in conn.execute(
            "SELECT DISTINCT key FROM jobs WHERE status IN ('pending', 'running')"
            " AND key IS NOT NULL")})

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the writer thread, in a transaction; await its commit.

        Once submitted, the operation runs even if the caller stops waiting. The PR index
        and the redelivery ledger (bot.queue.pr_index, bot.queue.redelivery) run their SQL
        this way.
        """
        return await self._writer.call(fn)

    def call_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`call` for code outside the event loop (command line, tests)."""
        return self._writer.call_sync(fn)

    # -- deliveries ----------------------------------------------------------------------

    async def insert_delivery(self, delivery: Delivery) -> bool:
        return await self._writer.insert_delivery(delivery, self.clock())

    async def claim_delivery(self, owner: str, lease_seconds: float) -> DeliveryRecord | None:
        policy = self.delivery_retry

        def op(conn: sqlite3.Connection) -> DeliveryRecord | None:
            now = self.clock()
            expire_delivery_leases(conn, now, policy)
            row = conn.execute(
                "UPDATE deliveries SET status = 'processing', attempts = attempts + 1,"
                " lease_owner = ?, lease_expires = ?"
                " WHERE seq = (SELECT seq FROM deliveries WHERE status = 'pending'"
                " AND not_before <= ? ORDER BY seq LIMIT 1)"
                f" RETURNING {DELIVERY_COLUMNS}",
                (owner, now + lease_seconds, now),
            ).fetchone()
            return None if row is None else delivery_from_row(conn, row)

        return await self.call(op)

    async def finish_delivery(
        self,
        claim: DeliveryRecord,
        owner: str,
        completed: Sequence[tuple[str, UnitOfWork]],
        errors: Sequence[str],
        *,
        classification: Classification | None = None,
        permanent: bool = False,
    ) -> DeliveryStatus:
        policy = self.delivery_retry

        def op(conn: sqlite3.Connection) -> DeliveryStatus:
            now = self.clock()
            row = conn.execute(
                "SELECT status, lease_owner, attempts, handlers_done FROM deliveries WHERE seq = ?",
                (claim.seq,),
            ).fetchone()
            if row is None or row[0] != DeliveryStatus.PROCESSING or row[1] != owner:
                raise LeaseLost(f"delivery {claim.delivery_id} is no longer held by {owner}")
            done = set(json.loads(row[3]))
            for name, unit in completed:
                apply_unit(conn, unit, f"delivery:{claim.delivery_id}", now, self.job_retry)
                done.add(name)
            attempts = int(row[2])
            if not errors:
                status, not_before, error = DeliveryStatus.DONE, now, None
            elif permanent or attempts >= policy.max_attempts:
                status, not_before, error = DeliveryStatus.FAILED, now, "; ".join(errors)
            else:
                status = DeliveryStatus.PENDING
                not_before = now + policy.delay(attempts)
                error = "; ".join(errors)
            action, installation_id, repository = classification or (None, None, None)
            conn.execute(
                "UPDATE deliveries SET status = ?, not_before = ?, lease_owner = NULL,"
                " lease_expires = NULL, handlers_done = ?,"
                " last_error = COALESCE(?, last_error), finished_at = ?,"
                " action = COALESCE(?, action),"
                " installation_id = COALESCE(?, installation_id),"
                " repository = COALESCE(?, repository) WHERE seq = ?",
                (
                    status,
                    not_before,
                    json.dumps(sorted(done)),
                    error,
                    now if status in (DeliveryStatus.DONE, DeliveryStatus.FAILED) else None,
                    action,
                    installation_id,
                    repository,
                    claim.seq,
                ),
            )
            return status

        return await self.call(op)

    async def renew_delivery(self, claim: DeliveryRecord, owner: str, lease_seconds: float) -> bool:
        return await self._renew(DELIVERIES, claim.seq, owner, lease_seconds)

    async def release_delivery(self, claim: DeliveryRecord, owner: str) -> bool:
        return await self._release(DELIVERIES, claim.seq, owner)

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        def op(conn: sqlite3.Connection) -> DeliveryRecord | None:
            row = conn.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE delivery_id = ?",
                (delivery_id,),
            ).fetchone()
            return None if row is None else delivery_from_row(conn, row)

        return await self.call(op)

    # -- jobs ----------------------------------------------------------------------------

    async def enqueue_job(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        delay: float = 0.0,
        max_attempts: int | None = None,
        origin: str | None = None,
    ) -> EnqueueResult:
        spec = job_spec(
            kind,
            payload,
            key=key,
            idempotency_key=idempotency_key,
            delay=delay,
            max_attempts=max_attempts,
        )

        def op(conn: sqlite3.Connection) -> EnqueueResult:
            return insert_job(conn, spec, origin, self.clock(), self.job_retry)

        return await self.call(op)

    async def claim_job(
        self, owner: str, kinds: Collection[str], lease_seconds: float
    ) -> Job | None:
        kinds = sorted(kinds)
        if not kinds:
            return None
        marks = ", ".join("?" for _ in kinds)

        def op(conn: sqlite3.Connection) -> Job | None:
            now = self.clock()
            expire_job_leases(conn, now)
            row = conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1,"
                " lease_owner = ?, lease_expires = ?, updated_at = ?"
                " WHERE id = (SELECT j.id FROM jobs j"
                f" WHERE j.status = 'pending' AND j.not_before <= ? AND j.kind IN ({marks})"
                " AND (j.key IS NULL OR ("
                "  NOT EXISTS (SELECT 1 FROM jobs r WHERE r.key = j.key AND r.status = 'running')"
                "  AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.key = j.key"
                "   AND o.status = 'pending' AND o.id < j.id)))"
                " ORDER BY j.id LIMIT 1)"
                f" RETURNING {JOB_COLUMNS}",
                (owner, now + lease_seconds, now, now, *kinds),
            ).fetchone()
            return None if row is None else job_from_row(row)

        return await self.call(op)

    async def complete_job(self, job: Job, owner: str, unit: UnitOfWork | None = None) -> None:
        def op(conn: sqlite3.Connection) -> None:
            now = self.clock()
            check_job_lease(conn, job, owner)
            if unit is not None:
                apply_unit(conn, unit, f"job:{job.id}", now, self.job_retry)
            conn.execute(
                "UPDATE jobs SET status = 'done', lease_owner = NULL, lease_expires = NULL,"
                " updated_at = ?, finished_at = ? WHERE id = ?",
                (now, now, job.id),
            )

        await self.call(op)

    async def fail_job(self, job: Job, owner: str, error: str, *, retry: bool = True) -> JobStatus:
        policy = self.job_retry

        def op(conn: sqlite3.Connection) -> JobStatus:
            now = self.clock()
            attempts, max_attempts = check_job_lease(conn, job, owner)
            if retry and attempts < max_attempts:
                status, not_before, finished = JobStatus.PENDING, now + policy.delay(attempts), None
            else:
                status, not_before, finished = JobStatus.FAILED, now, now
            conn.execute(
                "UPDATE jobs SET status = ?, not_before = ?, lease_owner = NULL,"
                " lease_expires = NULL, last_error = ?, updated_at = ?, finished_at = ?"
                " WHERE id = ?",
                (status, not_before, error, now, finished, job.id),
            )
            return status

        return await self.call(op)

    async def renew_job(self, job: Job, owner: str, lease_seconds: float) -> bool:
        return await self._renew(JOBS, job.id, owner, lease_seconds)

    async def release_job(self, job: Job, owner: str) -> bool:
        return await self._release(JOBS, job.id, owner)

    async def get_job(self, job_id: int) -> Job | None:
        def op(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            return None if row is None else job_from_row(row)

        return await self.call(op)

    async def list_jobs(
        self,
        *,
        kind: str | None = None,
        key: str | None = None,
        status: JobStatus | None = None,
    ) -> list[Job]:
        where, params = where_clause({"kind": kind, "key": key, "status": status})

        def op(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs{where} ORDER BY id", params
            ).fetchall()
            return [job_from_row(row) for row in rows]

        return await self.call(op)

    # -- leases, for both kinds ----------------------------------------------------------

    async def _renew(self, kind: Leased, key: int, owner: str, lease_seconds: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                f"UPDATE {kind.table} SET lease_expires = ?"
                f" WHERE {kind.key} = ? AND status = ? AND lease_owner = ?",
                (self.clock() + lease_seconds, key, kind.held, owner),
            )
            return cursor.rowcount == 1

        return await self.call(op)

    async def _release(self, kind: Leased, key: int, owner: str) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                f"UPDATE {kind.table} SET status = 'pending', attempts = MAX(attempts - 1, 0),"
                " lease_owner = NULL, lease_expires = NULL"
                f" WHERE {kind.key} = ? AND status = ? AND lease_owner = ?",
                (key, kind.held, owner),
            )
            return cursor.rowcount == 1

        return await self.call(op)

    # -- the whole queue -----------------------------------------------------------------

    async def recover_expired(self) -> tuple[int, int]:
        policy = self.delivery_retry

        def op(conn: sqlite3.Connection) -> tuple[int, int]:
            now = self.clock()
            return expire_delivery_leases(conn, now, policy), expire_job_leases(conn, now)

        return await self.call(op)

    async def counts(self) -> QueueCounts:
        def op(conn: sqlite3.Connection) -> QueueCounts:
            deliveries = {
                status.value: count(conn, "deliveries", status)
                for status in (
                    DeliveryStatus.PENDING,
                    DeliveryStatus.PROCESSING,
                    DeliveryStatus.FAILED,
                )
            }
            jobs = {
                status.value: count(conn, "jobs", status)
                for status in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED)
            }
            now = self.clock()
            (delivery_at,) = conn.execute(
                "SELECT MIN(received_at) FROM deliveries WHERE status = 'pending'").fetchone()
            (job_at,) = conn.execute(
                "SELECT MIN(created_at) FROM jobs WHERE status = 'pending'").fetchone()
            oldest = {"deliveries": None if delivery_at is None else now - delivery_at,
                      "jobs": None if job_at is None else now - job_at}
            return QueueCounts(deliveries, jobs, oldest)

        return await self.call(op)
