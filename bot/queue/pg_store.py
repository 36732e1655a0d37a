"""The queue in PostgreSQL: deliveries and jobs under leases, shared by every gwi process.

The same promises as the SQLite store (bot/queue/interface.py), kept by the database for any
number of processes on any number of hosts: a delivery id is stored once (a unique column,
``ON CONFLICT DO NOTHING``) and committed before ``insert_delivery`` returns; claims take rows
with ``FOR UPDATE SKIP LOCKED``, so two workers never take the same one and none waits for
another; a partial unique index allows one running job per key; a handler's unit of work commits
in the transaction that finishes its item. Every commit that stores a delivery or a job notifies
``gwi_queue``, which wakes the workers of every process (polling stays the fallback).
"""

from __future__ import annotations

import asyncio
import json
import time
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import psycopg

from bot.queue.interface import Clock, QueueStore, RedeliveryLedger, RunIndex
from bot.queue.pg_admin import PgAdmin
from bot.queue.pg_index import PgRedeliveryLedger, PgRunIndex
from bot.queue.pg_ops import (
    apply_unit,
    check_job_lease,
    count,
    delivery_from_row,
    expire_delivery_leases,
    expire_job_leases,
    insert_job,
    notify,
    one,
    text,
    where_clause,
)
from bot.queue.pg_runner import CHANNEL, Conn, Op, PgRunner, T
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
from bot.queue.schema import DELIVERY_COLUMNS, JOB_COLUMNS
from bot.queue.sqlite_ops import DELIVERIES, JOBS, Leased, job_from_row
from bot.queue.writer import BODY_COMPRESSION

#: Bodies larger than this are deflated on a helper thread, off the pool's event loop.
_DEFLATE_OFF_LOOP = 64 * 1024


class PostgresQueueStore(PgAdmin, QueueStore):
    """The queue database. Open it with :meth:`open`; every method is safe from any task.

    ``clock`` gives the time used for leases, delays and timestamps (tests pass their own).
    """

    def __init__(self, runner: PgRunner, *, clock: Clock = time.time,
                 delivery_retry: JobRetry = DEFAULT_RETRY,
                 job_retry: JobRetry = DEFAULT_RETRY) -> None:
        self.url = runner.url
        self.clock = clock
        self.delivery_retry = delivery_retry
        self.job_retry = job_retry
        self._runner = runner
        self._index = PgRunIndex(runner)
        self._ledger = PgRedeliveryLedger(runner)

    @classmethod
    def open(cls, url: str, *, clock: Clock = time.time,
             delivery_retry: JobRetry = DEFAULT_RETRY,
             job_retry: JobRetry = DEFAULT_RETRY) -> PostgresQueueStore:
        """Connect, bring the schema up to date (bot/queue/pg_schema.py), start the pool."""
        return cls(PgRunner(url), clock=clock, delivery_retry=delivery_retry,
                   job_retry=job_retry)

    def close(self) -> None:
        self._runner.close()

    def run_index(self) -> RunIndex:
        return self._index

    def redelivery_ledger(self) -> RedeliveryLedger:
        return self._ledger

    def subscribe(self, on_delivery: Callable[[], None],
                  on_job: Callable[[], None]) -> Callable[[], None]:
        def wake(what: str) -> None:
            (on_job if what == "job" else on_delivery)()

        return self._runner.subscribe(wake)

    async def call(self, fn: Op[T]) -> T:
        """Run ``await fn(connection)`` in one transaction (bot.queue.pg_runner)."""
        return await self._runner.call(fn)

    def call_sync(self, fn: Op[T]) -> T:
        return self._runner.call_sync(fn)

    async def busy_keys(self) -> set[str]:
        async def op(conn: Conn) -> set[str]:
            cursor = await conn.execute(
                "SELECT DISTINCT key FROM jobs WHERE status IN ('pending', 'running')"
                " AND key IS NOT NULL")
            return {row[0] for row in await cursor.fetchall()}

        return await self.call(op)

    # -- deliveries ----------------------------------------------------------------------

    async def insert_delivery(self, delivery: Delivery) -> bool:
        received_at = self.clock()
        body = delivery.body
        if len(body) > _DEFLATE_OFF_LOOP:
            deflated = await asyncio.to_thread(zlib.compress, body, BODY_COMPRESSION)
        else:
            deflated = zlib.compress(body, BODY_COMPRESSION)

        async def op(conn: Conn) -> bool:
            # One statement, so one round trip and its own transaction: the row, its body,
            # and the wake-up of every listening process, all or nothing. A redelivery
            # inserts nothing and selects no row.
            row = await one(
                conn,
                "WITH d AS (INSERT INTO deliveries (delivery_id, event, received_at, status,"
                " not_before) VALUES (%(id)s, %(event)s, %(at)s, 'pending', %(at)s)"
                " ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id),"
                " b AS (INSERT INTO delivery_bodies (delivery_id, encoding, body)"
                " SELECT delivery_id, 'zlib', %(body)s FROM d)"
                " SELECT pg_notify(%(channel)s, 'delivery') FROM d",
                {"id": delivery.delivery_id, "event": delivery.event, "at": received_at,
                 "body": deflated, "channel": CHANNEL})
            return row is not None

        return await self._runner.call(op, transaction=False)

    async def claim_delivery(self, owner: str, lease_seconds: float) -> DeliveryRecord | None:
        policy = self.delivery_retry

        async def op(conn: Conn) -> DeliveryRecord | None:
            now = self.clock()
            await expire_delivery_leases(conn, now, policy)
            row = await one(
                conn,
                "UPDATE deliveries SET status = 'processing', attempts = attempts + 1,"
                " lease_owner = %s, lease_expires = %s"
                " WHERE seq = (SELECT seq FROM deliveries WHERE status = 'pending'"
                " AND not_before <= %s ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED)"
                f" RETURNING {DELIVERY_COLUMNS}",
                (owner, now + lease_seconds, now))
            return None if row is None else await delivery_from_row(conn, row)

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

        async def op(conn: Conn) -> DeliveryStatus:
            now = self.clock()
            row = await one(conn, "SELECT status, lease_owner, attempts, handlers_done"
                                  " FROM deliveries WHERE seq = %s FOR UPDATE", (claim.seq,))
            if row is None or row[0] != DeliveryStatus.PROCESSING or row[1] != owner:
                raise LeaseLost(f"delivery {claim.delivery_id} is no longer held by {owner}")
            done = set(json.loads(row[3]))
            for name, unit in completed:
                await apply_unit(conn, unit, f"delivery:{claim.delivery_id}", now,
                                 self.job_retry)
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
            await conn.execute(
                "UPDATE deliveries SET status = %s, not_before = %s, lease_owner = NULL,"
                " lease_expires = NULL, handlers_done = %s,"
                " last_error = COALESCE(%s, last_error), finished_at = %s,"
                " action = COALESCE(%s, action),"
                " installation_id = COALESCE(%s, installation_id),"
                " repository = COALESCE(%s, repository) WHERE seq = %s",
                (status.value, not_before, json.dumps(sorted(done)), text(error),
                 now if status in (DeliveryStatus.DONE, DeliveryStatus.FAILED) else None,
                 text(action), installation_id, text(repository), claim.seq))
            return status

        return await self.call(op)

    async def renew_delivery(self, claim: DeliveryRecord, owner: str, lease_seconds: float) -> bool:
        return await self._renew(DELIVERIES, claim.seq, owner, lease_seconds)

    async def release_delivery(self, claim: DeliveryRecord, owner: str) -> bool:
        return await self._release(DELIVERIES, claim.seq, owner)

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        async def op(conn: Conn) -> DeliveryRecord | None:
            row = await one(conn, f"SELECT {DELIVERY_COLUMNS} FROM deliveries"
                                  " WHERE delivery_id = %s", (delivery_id,))
            return None if row is None else await delivery_from_row(conn, row)

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
        spec = job_spec(kind, payload, key=key, idempotency_key=idempotency_key, delay=delay,
                        max_attempts=max_attempts)

        async def op(conn: Conn) -> EnqueueResult:
            return await insert_job(conn, spec, origin, self.clock(), self.job_retry)

        return await self.call(op)

    async def claim_job(
        self, owner: str, kinds: Collection[str], lease_seconds: float
    ) -> Job | None:
        wanted = sorted(kinds)
        if not wanted:
            return None

        async def op(conn: Conn) -> Job | None:
            now = self.clock()
            await expire_job_leases(conn, now)
            try:
                async with conn.transaction():  # a savepoint: a lost race is undone alone
                    row = await one(
                        conn,
                        "UPDATE jobs SET status = 'running', attempts = attempts + 1,"
                        " lease_owner = %(owner)s, lease_expires = %(expires)s,"
                        " updated_at = %(now)s"
                        " WHERE id = (SELECT j.id FROM jobs j"
                        " WHERE j.status = 'pending' AND j.not_before <= %(now)s"
                        " AND j.kind = ANY(%(kinds)s)"
                        " AND (j.key IS NULL OR ("
                        "  NOT EXISTS (SELECT 1 FROM jobs r WHERE r.key = j.key"
                        "   AND r.status = 'running')"
                        "  AND NOT EXISTS (SELECT 1 FROM jobs o WHERE o.key = j.key"
                        "   AND o.status = 'pending' AND o.id < j.id)))"
                        " ORDER BY j.id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                        f" RETURNING {JOB_COLUMNS}",
                        {"owner": owner, "expires": now + lease_seconds, "now": now,
                         "kinds": wanted})
            except psycopg.errors.UniqueViolation:
                # Another process started a job of the same key between our look and our
                # write; the index refused the second one. Nothing was taken.
                return None
            return None if row is None else job_from_row(row)

        return await self.call(op)

    async def complete_job(self, job: Job, owner: str, unit: UnitOfWork | None = None) -> None:
        async def op(conn: Conn) -> None:
            now = self.clock()
            await check_job_lease(conn, job, owner)
            if unit is not None:
                await apply_unit(conn, unit, f"job:{job.id}", now, self.job_retry)
            await conn.execute(
                "UPDATE jobs SET status = 'done', lease_owner = NULL, lease_expires = NULL,"
                " updated_at = %s, finished_at = %s WHERE id = %s", (now, now, job.id))
            if job.key is not None:  # the next job of its key may start now
                await notify(conn, "job")

        await self.call(op)

    async def fail_job(self, job: Job, owner: str, error: str, *, retry: bool = True) -> JobStatus:
        policy = self.job_retry

        async def op(conn: Conn) -> JobStatus:
            now = self.clock()
            attempts, max_attempts = await check_job_lease(conn, job, owner)
            if retry and attempts < max_attempts:
                status, not_before, finished = JobStatus.PENDING, now + policy.delay(attempts), None
            else:
                status, not_before, finished = JobStatus.FAILED, now, now
            await conn.execute(
                "UPDATE jobs SET status = %s, not_before = %s, lease_owner = NULL,"
                " lease_expires = NULL, last_error = %s, updated_at = %s, finished_at = %s"
                " WHERE id = %s", (status.value, not_before, text(error), now, finished, job.id))
            return status

        return await self.call(op)

    async def renew_job(self, job: Job, owner: str, lease_seconds: float) -> bool:
        return await self._renew(JOBS, job.id, owner, lease_seconds)

    async def release_job(self, job: Job, owner: str) -> bool:
        return await self._release(JOBS, job.id, owner)

    async def get_job(self, job_id: int) -> Job | None:
        async def op(conn: Conn) -> Job | None:
            row = await one(conn, f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = %s", (job_id,))
            return None if row is None else job_from_row(row)

        return await self.call(op)

    async def list_jobs(self, *, kind: str | None = None, key: str | None = None,
                        status: JobStatus | None = None) -> list[Job]:
        where, params = where_clause({"kind": kind, "key": key,
                                      "status": status.value if status else None})

        async def op(conn: Conn) -> list[Job]:
            cursor = await conn.execute(
                f"SELECT {JOB_COLUMNS} FROM jobs{where} ORDER BY id", params)
            return [job_from_row(row) for row in await cursor.fetchall()]

        return await self.call(op)

    # -- leases, for both kinds ----------------------------------------------------------

    async def _renew(self, kind: Leased, key: int, owner: str, lease_seconds: float) -> bool:
        async def op(conn: Conn) -> bool:
            cursor = await conn.execute(
                f"UPDATE {kind.table} SET lease_expires = %s"
                f" WHERE {kind.key} = %s AND status = %s AND lease_owner = %s",
                (self.clock() + lease_seconds, key, kind.held, owner))
            return cursor.rowcount == 1

        return await self.call(op)

    async def _release(self, kind: Leased, key: int, owner: str) -> bool:
        async def op(conn: Conn) -> bool:
            cursor = await conn.execute(
                f"UPDATE {kind.table} SET status = 'pending',"
                " attempts = GREATEST(attempts - 1, 0), lease_owner = NULL, lease_expires = NULL"
                f" WHERE {kind.key} = %s AND status = %s AND lease_owner = %s",
                (key, kind.held, owner))
            if cursor.rowcount == 1:
                await notify(conn, "job" if kind is JOBS else "delivery")
            return cursor.rowcount == 1

        return await self.call(op)

    # -- the whole queue -----------------------------------------------------------------

    async def recover_expired(self) -> tuple[int, int]:
        policy = self.delivery_retry

        async def op(conn: Conn) -> tuple[int, int]:
            now = self.clock()
            return (await expire_delivery_leases(conn, now, policy),
                    await expire_job_leases(conn, now))

        return await self.call(op)

    async def counts(self) -> QueueCounts:
        async def op(conn: Conn) -> QueueCounts:
            deliveries = {status.value: await count(conn, "deliveries", status.value)
                          for status in (DeliveryStatus.PENDING, DeliveryStatus.PROCESSING,
                                         DeliveryStatus.FAILED)}
            jobs = {status.value: await count(conn, "jobs", status.value)
                    for status in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED)}
            now = self.clock()
            (delivery_at,) = await one(
                conn, "SELECT MIN(received_at) FROM deliveries WHERE status = 'pending'")
            (job_at,) = await one(conn, "SELECT MIN(created_at) FROM jobs WHERE status = 'pending'")
            oldest = {"deliveries": None if delivery_at is None else now - delivery_at,
                      "jobs": None if job_at is None else now - job_at}
            return QueueCounts(deliveries, jobs, oldest)

        return await self.call(op)
