"""The durable queue: webhook deliveries and generic jobs in one SQLite file, one writer thread.

Every read and write goes through one thread that owns the only connection. It takes
whatever is waiting and commits it in one transaction (group commit): under load one fsync
covers many deliveries, and a caller's ``await`` returns only once its work is on disk
(WAL, ``synchronous=FULL``). Deliveries go in with one bulk statement per batch; other
operations each run in their own savepoint, so one that raises is undone alone. Two helper
threads keep slow work off that path: one deflates bodies, one checkpoints the WAL.

Deliveries and jobs are claimed with a lease (owner + expiry). Finishing checks that the
caller still holds the lease and applies the handler's :class:`UnitOfWork` (the jobs it
enqueued) in the same transaction that marks the item finished, so from the app's point
of view each is processed exactly once: a crash before that commit leaves no trace but an
expired lease, which the next claim takes up again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import os
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from bot import logs
from bot.server.intake import Classification, Delivery

DB_FILENAME = "queue.sqlite3"
SCHEMA_VERSION = 1
# One transaction never holds more operations than this, so no caller waits behind an
# unbounded batch.
MAX_BATCH = 256
BUSY_TIMEOUT_MS = 10_000
# Bodies are stored deflated: webhook JSON shrinks about ninefold, and fewer bytes to write
# is what lets one fsync cover many deliveries. zlib releases the GIL while it works.
BODY_COMPRESSION = 1
CHECKPOINT_QUIET_SECONDS = 0.25
# Under unbroken load the writer checkpoints itself once the WAL file is this large. The
# file is cut back to WAL_SIZE_LIMIT (smaller) when the log restarts, so a file this large
# really holds this much log.
CHECKPOINT_WAL_BYTES = 64 * 1024 * 1024
WAL_SIZE_LIMIT = 16 * 1024 * 1024

T = TypeVar("T")
Clock = Callable[[], float]

log = logs.get_logger("gwi.queue")


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StoreError(Exception):
    """The queue's database cannot be opened or used."""


class LeaseLost(Exception):
    """A worker tried to finish or renew an item it no longer holds (its lease ran out and
    another claim took it); whatever it would have written is dropped."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often an item is tried, and how long to wait before the next try."""

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed try: doubling, capped."""
        return float(min(self.max_delay, self.base_delay * 2 ** max(attempts - 1, 0)))


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job to enqueue. ``payload_json`` is the payload already serialised."""

    kind: str
    payload_json: str
    key: str | None = None
    idempotency_key: str | None = None
    delay: float = 0.0
    max_attempts: int | None = None


def job_spec(
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    key: str | None = None,
    idempotency_key: str | None = None,
    delay: float = 0.0,
    max_attempts: int | None = None,
) -> JobSpec:
    """Validate and serialise a job now, so a bad payload fails where it was made."""
    if not kind:
        raise ValueError("a job needs a kind")
    if delay < 0:
        raise ValueError("a job's delay cannot be negative")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    payload_json = json.dumps(dict(payload or {}), separators=(",", ":"), sort_keys=True)
    return JobSpec(kind, payload_json, key, idempotency_key, delay, max_attempts)


@dataclass
class UnitOfWork:
    """What a handler asks for; applied atomically with marking its delivery or job finished.

    A handler that raises has its unit of work thrown away, so nothing it asked for happens
    and its retry starts clean.
    """

    _jobs: list[JobSpec] = field(default_factory=list)
    _cancellations: list[tuple[str, str | None]] = field(default_factory=list)

    def enqueue_job(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        delay: float = 0.0,
        max_attempts: int | None = None,
    ) -> None:
        """Enqueue a job when this unit commits. See :meth:`Store.enqueue_job` for the fields."""
        self._jobs.append(
            job_spec(
                kind,
                payload,
                key=key,
                idempotency_key=idempotency_key,
                delay=delay,
                max_attempts=max_attempts,
            )
        )

    def cancel_pending_jobs(self, key: str, *, kind: str | None = None) -> None:
        """When this unit commits, cancel the not-yet-started jobs with ``key`` (and ``kind``).

        Cancellations apply before this unit's own enqueues, so "supersede the queued run
        for this PR with a new one" is one unit: cancel, then enqueue.
        """
        self._cancellations.append((key, kind))

    @property
    def jobs(self) -> tuple[JobSpec, ...]:
        return tuple(self._jobs)

    @property
    def cancellations(self) -> tuple[tuple[str, str | None], ...]:
        return tuple(self._cancellations)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A stored delivery, as claimed by a worker or looked up."""

    seq: int
    delivery_id: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    received_at: float
    body: bytes
    status: DeliveryStatus
    attempts: int
    lease_owner: str | None
    lease_expires: float | None
    handlers_done: frozenset[str]
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job, as claimed by a worker or looked up."""

    id: int
    kind: str
    key: str | None
    idempotency_key: str | None
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    max_attempts: int
    not_before: float
    lease_owner: str | None
    lease_expires: float | None
    last_error: str | None
    origin: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    job_id: int
    created: bool  # False: a job with the same idempotency key already existed


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """How many deliveries and jobs are in each unfinished or failed state."""

    deliveries: dict[str, int]
    jobs: dict[str, int]


_SCHEMA = """
CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY,
    delivery_id     TEXT NOT NULL UNIQUE,
    event           TEXT NOT NULL,
    action          TEXT,
    installation_id INTEGER,
    repository      TEXT,
    received_at     REAL NOT NULL,
    status          TEXT NOT NULL
        CHECK (status IN ('pending', 'processing', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    not_before      REAL NOT NULL,
    lease_owner     TEXT,
    lease_expires   REAL,
    handlers_done   TEXT NOT NULL DEFAULT '[]',
    last_error      TEXT,
    finished_at     REAL
);
-- Claims take the oldest ready row of a status: this order lets them stop at the first
-- one instead of sorting the whole backlog.
CREATE INDEX deliveries_by_status ON deliveries (status, seq);

-- The raw body, exactly as signed, apart from the small rows that change state: updating
-- a status then never rewrites a payload of up to 25 MiB.
CREATE TABLE delivery_bodies (
    delivery_id     TEXT PRIMARY KEY REFERENCES deliveries (delivery_id),
    encoding        TEXT NOT NULL CHECK (encoding IN ('identity', 'zlib')),
    body            BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    key             TEXT,
    idempotency_key TEXT UNIQUE,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    not_before      REAL NOT NULL,
    lease_owner     TEXT,
    lease_expires   REAL,
    last_error      TEXT,
    origin          TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    finished_at     REAL
);
CREATE INDEX jobs_by_status ON jobs (status, id);
CREATE INDEX jobs_by_key ON jobs (key, status, id) WHERE key IS NOT NULL;
-- The promise "at most one running job per key" is kept by the database itself.
CREATE UNIQUE INDEX jobs_one_running_per_key ON jobs (key)
    WHERE status = 'running' AND key IS NOT NULL;
"""

_DELIVERY_COLUMNS = (
    "seq, delivery_id, event, action, installation_id, repository, received_at, status,"
    " attempts, lease_owner, lease_expires, handlers_done, last_error"
)
_JOB_COLUMNS = (
    "id, kind, key, idempotency_key, payload, status, attempts, max_attempts, not_before,"
    " lease_owner, lease_expires, last_error, origin, created_at"
)


@dataclass(frozen=True, slots=True)
class _Leased:
    """A leased table: its name, its key column, and the status of a held row."""

    table: str
    key: str
    held: str


_DELIVERIES = _Leased("deliveries", "seq", DeliveryStatus.PROCESSING.value)
_JOBS = _Leased("jobs", "id", JobStatus.RUNNING.value)


@dataclass(slots=True)
class _Request:
    """One piece of work for the writer: an operation, or a delivery to insert (the hot path
    gets a bulk statement). ``loop`` is set when ``future`` is an asyncio future."""

    fn: Callable[[sqlite3.Connection], Any] | None
    delivery: Delivery | None
    deflated: bytes
    received_at: float
    future: asyncio.Future[Any] | concurrent.futures.Future[Any]
    loop: asyncio.AbstractEventLoop | None


_Outcome = tuple[_Request, bool, Any]  # request, succeeded, result or exception


class Store:
    """The queue database. Open it with :meth:`open`; every method is safe from any task.

    ``clock`` gives the time used for leases, delays and timestamps (tests pass their own).
    """

    def __init__(
        self,
        path: Path,
        connection: sqlite3.Connection,
        *,
        clock: Clock = time.time,
        delivery_retry: RetryPolicy = DEFAULT_RETRY,
        job_retry: RetryPolicy = DEFAULT_RETRY,
    ) -> None:
        self.path = path
        self.clock = clock
        self.delivery_retry = delivery_retry
        self.job_retry = job_retry
        self._conn = connection
        self._wal = Path(f"{path}-wal")
        self._inbox: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._to_deflate: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._closed = False
        self._written = threading.Event()  # set after each commit: the WAL has grown
        self._stop_checkpoints = threading.Event()
        self._thread = threading.Thread(target=self._writer, name="gwi-queue-writer", daemon=True)
        self._checkpoints = threading.Thread(
            target=self._checkpointer, name="gwi-queue-checkpoint", daemon=True
        )
        self._deflater = threading.Thread(
            target=self._deflate, name="gwi-queue-deflate", daemon=True
        )
        self._thread.start()
        self._checkpoints.start()
        self._deflater.start()

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        clock: Clock = time.time,
        delivery_retry: RetryPolicy = DEFAULT_RETRY,
        job_retry: RetryPolicy = DEFAULT_RETRY,
    ) -> Store:
        """Open (creating if needed) ``<data_dir>/queue.sqlite3`` and start its writer."""
        path = data_dir / DB_FILENAME
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            created = not path.exists()
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the queue database {path}: {exc}") from exc
        try:
            _prepare(conn)
            if created:
                _fsync_dir(data_dir)
        except (OSError, sqlite3.Error, StoreError) as exc:
            conn.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"cannot use the queue database {path}: {exc}") from exc
        return cls(path, conn, clock=clock, delivery_retry=delivery_retry, job_retry=job_retry)

    def close(self) -> None:
        """Finish the operations already submitted, then close the connections."""
        if not self._closed:
            self._closed = True
            self._to_deflate.put(None)
            self._deflater.join()
            self._stop_checkpoints.set()
            self._written.set()
            self._checkpoints.join()
            self._inbox.put(None)
            self._thread.join()

    # -- the writer thread ---------------------------------------------------------------

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the writer thread, in a transaction; await its commit.

        Once submitted, the operation runs even if the caller stops waiting.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put(_Request(fn, None, b"", 0.0, future, loop))
        return await future

    def call_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`call` for code outside the event loop (command line, tests)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put(_Request(fn, None, b"", 0.0, future, None))
        return future.result()

    def _put(self, request: _Request) -> None:
        if self._closed:
            raise StoreError("the queue database is closed")
        self._inbox.put(request)

    def _writer(self) -> None:
        stopping = False
        while not stopping:
            first = self._inbox.get()
            if first is None:
                break
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            _settle(self._run_batch(batch))
            if _size(self._wal) > CHECKPOINT_WAL_BYTES:
                self._checkpoint_now()
        with contextlib.suppress(sqlite3.Error):
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._conn.close()

    def _checkpoint_now(self) -> None:
        """Checkpoint on the writer's own connection, between two batches.

        The checkpointer thread only runs in quiet moments: a checkpoint beside a busy
        writer competes with its fsyncs (checkpointing every quarter second under load put
        the intake benchmark's p99 at 72 to 100 ms, against 18 to 33 ms without), and can
        never let the log restart, since the writer has always appended more by the time
        it ends. Under unbroken load the log would grow without bound; this stops it. Between
        batches no other write is in progress, so the checkpoint copies every frame and the
        next transaction restarts the log from the beginning.
        """
        started = time.perf_counter()
        try:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            log.exception("queue.checkpoint_failed")
        else:
            log.debug("queue.checkpointed", ms=round(1000 * (time.perf_counter() - started), 1))

    def _deflate(self) -> None:
        """Compress delivery bodies on their way to the writer.

        zlib lets go of the GIL while it works, so here it runs beside both the event loop
        and the writer's fsync instead of lengthening either.
        """
        while (request := self._to_deflate.get()) is not None:
            assert request.delivery is not None
            try:
                request.deflated = zlib.compress(request.delivery.body, BODY_COMPRESSION)
            except (MemoryError, zlib.error) as exc:
                _settle([(request, False, StoreError(f"cannot compress the body: {exc}"))])
                continue
            self._inbox.put(request)

    def _checkpointer(self) -> None:
        """Copy committed pages from the WAL into the database, off the writer's path.

        SQLite's own checkpoints are off (``wal_autocheckpoint = 0``): inside a commit, a
        checkpoint stalls every delivery waiting on that commit. This one runs once the
        writer has been quiet for a moment, so its fsyncs do not queue up behind, or in
        front of, the ones that acknowledge deliveries; under unbroken load the writer
        bounds the log itself (:meth:`_checkpoint_now`).
        """
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except sqlite3.Error:
            log.exception("queue.checkpointer_failed")
            return
        try:
            while not self._stop_checkpoints.is_set():
                self._written.wait()
                while not self._stop_checkpoints.is_set():
                    self._written.clear()
                    self._stop_checkpoints.wait(CHECKPOINT_QUIET_SECONDS)
                    if not self._written.is_set():
                        break
                if self._stop_checkpoints.is_set():
                    break
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    log.exception("queue.checkpoint_failed")
        finally:
            conn.close()

    def _run_batch(self, batch: list[_Request]) -> list[_Outcome]:
        """Run a batch in one transaction and one commit; each operation in a savepoint, so
        one that raises is undone alone and the others still commit."""
        inserts = [request for request in batch if request.delivery is not None]
        outcomes: list[_Outcome] = []
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            if inserts:
                outcomes.extend(_insert_deliveries(conn, inserts))
            for request in batch:
                if request.fn is None:
                    continue
                conn.execute("SAVEPOINT op")
                try:
                    result = request.fn(conn)
                except Exception as exc:  # noqa: BLE001 - handed to the caller
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    outcomes.append((request, False, exc))
                else:
                    conn.execute("RELEASE op")
                    outcomes.append((request, True, result))
            conn.execute("COMMIT")
            self._written.set()
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = StoreError(f"the queue database failed: {exc}")
            outcomes = [(request, False, error) for request in batch]
        return outcomes

    # -- deliveries ----------------------------------------------------------------------

    async def insert_delivery(self, delivery: Delivery) -> bool:
        """Persist a delivery; False when its delivery id is already stored (a redelivery).

        Returns once the row is committed and fsynced.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if self._closed:
            raise StoreError("the queue database is closed")
        self._to_deflate.put(_Request(None, delivery, b"", self.clock(), future, loop))
        return await future

    async def claim_delivery(self, owner: str, lease_seconds: float) -> DeliveryRecord | None:
        """Take the oldest ready delivery under a lease, or None when there is none."""
        policy = self.delivery_retry

        def op(conn: sqlite3.Connection) -> DeliveryRecord | None:
            now = self.clock()
            _expire_delivery_leases(conn, now, policy)
            row = conn.execute(
                "UPDATE deliveries SET status = 'processing', attempts = attempts + 1,"
                " lease_owner = ?, lease_expires = ?"
                " WHERE seq = (SELECT seq FROM deliveries WHERE status = 'pending'"
                " AND not_before <= ? ORDER BY seq LIMIT 1)"
                f" RETURNING {_DELIVERY_COLUMNS}",
                (owner, now + lease_seconds, now),
            ).fetchone()
            return None if row is None else _delivery(conn, row)

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
        """Record one try of a claimed delivery, atomically with its handlers' effects.

        ``completed`` names each handler that succeeded with the unit of work it filled:
        those effects commit now and the handler is not run again on a retry. With
        ``errors``, the delivery is tried again after a back-off, or marked failed with the
        errors once it has had its attempts (at once when ``permanent``). The payload's
        ``classification`` (action, installation, repository) is recorded on the row.
        Raises :class:`LeaseLost` (and writes nothing) when ``owner`` no longer holds it.
        """
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
                _apply_unit(conn, unit, f"delivery:{claim.delivery_id}", now, self.job_retry)
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
        """Extend the lease on a delivery; False when ``owner`` no longer holds it."""
        return await self._renew(_DELIVERIES, claim.seq, owner, lease_seconds)

    async def release_delivery(self, claim: DeliveryRecord, owner: str) -> bool:
        """Give a claimed delivery back untouched (shutting down); the try does not count."""
        return await self._release(_DELIVERIES, claim.seq, owner)

    async def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        def op(conn: sqlite3.Connection) -> DeliveryRecord | None:
            row = conn.execute(
                f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE delivery_id = ?",
                (delivery_id,),
            ).fetchone()
            return None if row is None else _delivery(conn, row)

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
        """Enqueue one job (outside any handler; handlers use their :class:`UnitOfWork`).

        ``key`` serialises: jobs sharing a key run one at a time, in the order enqueued
        (e.g. ``pr:owner/repo#12``). ``idempotency_key`` deduplicates for good: a second
        enqueue with the same one creates nothing and returns the first job's id.
        ``delay`` postpones the first try; ``max_attempts`` overrides the store's policy.
        """
        spec = job_spec(
            kind,
            payload,
            key=key,
            idempotency_key=idempotency_key,
            delay=delay,
            max_attempts=max_attempts,
        )

        def op(conn: sqlite3.Connection) -> EnqueueResult:
            return _insert_job(conn, spec, origin, self.clock(), self.job_retry)

        return await self.call(op)

    async def claim_job(
        self, owner: str, kinds: Collection[str], lease_seconds: float
    ) -> Job | None:
        """Take the oldest ready job of one of ``kinds`` whose key is free, under a lease."""
        kinds = sorted(kinds)
        if not kinds:
            return None
        marks = ", ".join("?" for _ in kinds)

        def op(conn: sqlite3.Connection) -> Job | None:
            now = self.clock()
            _expire_job_leases(conn, now)
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
                f" RETURNING {_JOB_COLUMNS}",
                (owner, now + lease_seconds, now, now, *kinds),
            ).fetchone()
            return None if row is None else _job(row)

        return await self.call(op)

    async def complete_job(self, job: Job, owner: str, unit: UnitOfWork | None = None) -> None:
        """Mark a claimed job done, atomically with the jobs its handler enqueued.

        Raises :class:`LeaseLost` (and writes nothing) when ``owner`` no longer holds it.
        """

        def op(conn: sqlite3.Connection) -> None:
            now = self.clock()
            _check_job_lease(conn, job, owner)
            if unit is not None:
                _apply_unit(conn, unit, f"job:{job.id}", now, self.job_retry)
            conn.execute(
                "UPDATE jobs SET status = 'done', lease_owner = NULL, lease_expires = NULL,"
                " updated_at = ?, finished_at = ? WHERE id = ?",
                (now, now, job.id),
            )

        await self.call(op)

    async def fail_job(self, job: Job, owner: str, error: str, *, retry: bool = True) -> JobStatus:
        """Record a failed try: back to pending after a back-off, or failed for good when
        ``retry`` is False or the job has had its attempts. Raises :class:`LeaseLost`."""
        policy = self.job_retry

        def op(conn: sqlite3.Connection) -> JobStatus:
            now = self.clock()
            attempts, max_attempts = _check_job_lease(conn, job, owner)
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
        """Extend the lease on a running job; False when ``owner`` no longer holds it."""
        return await self._renew(_JOBS, job.id, owner, lease_seconds)

    async def release_job(self, job: Job, owner: str) -> bool:
        """Give a running job back untouched (shutting down); the try does not count."""
        return await self._release(_JOBS, job.id, owner)

    async def get_job(self, job_id: int) -> Job | None:
        def op(conn: sqlite3.Connection) -> Job | None:
            row = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
            return None if row is None else _job(row)

        return await self.call(op)

    async def list_jobs(
        self,
        *,
        kind: str | None = None,
        key: str | None = None,
        status: JobStatus | None = None,
    ) -> list[Job]:
        """Jobs matching every filter given, oldest first."""
        where, params = _filters({"kind": kind, "key": key, "status": status})

        def op(conn: sqlite3.Connection) -> list[Job]:
            rows = conn.execute(
                f"SELECT {_JOB_COLUMNS} FROM jobs{where} ORDER BY id", params
            ).fetchall()
            return [_job(row) for row in rows]

        return await self.call(op)

    # -- leases, for both kinds ----------------------------------------------------------

    async def _renew(self, kind: _Leased, key: int, owner: str, lease_seconds: float) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                f"UPDATE {kind.table} SET lease_expires = ?"
                f" WHERE {kind.key} = ? AND status = ? AND lease_owner = ?",
                (self.clock() + lease_seconds, key, kind.held, owner),
            )
            return cursor.rowcount == 1

        return await self.call(op)

    async def _release(self, kind: _Leased, key: int, owner: str) -> bool:
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
        """Put back what a crashed process held (expired leases): (deliveries, jobs) freed.

        Claims do this too; start-up calls it to log what a crash left behind.
        """
        policy = self.delivery_retry

        def op(conn: sqlite3.Connection) -> tuple[int, int]:
            now = self.clock()
            return _expire_delivery_leases(conn, now, policy), _expire_job_leases(conn, now)

        return await self.call(op)

    async def counts(self) -> QueueCounts:
        """Deliveries and jobs per unfinished (or failed) status, for health checks."""

        def op(conn: sqlite3.Connection) -> QueueCounts:
            deliveries = {
                status.value: _count(conn, "deliveries", status)
                for status in (
                    DeliveryStatus.PENDING,
                    DeliveryStatus.PROCESSING,
                    DeliveryStatus.FAILED,
                )
            }
            jobs = {
                status.value: _count(conn, "jobs", status)
                for status in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED)
            }
            return QueueCounts(deliveries, jobs)

        return await self.call(op)


# -- the operations, run on the writer thread --------------------------------------------

# Rows per bulk INSERT: well under SQLite's limit on bound parameters.
_INSERT_CHUNK = 100


def _insert_deliveries(conn: sqlite3.Connection, requests: list[_Request]) -> list[_Outcome]:
    """Insert a batch's deliveries with a few statements, however many there are.

    Every statement costs the writer a trip through the GIL while the event loop is busy,
    so the batch asks which ids are already stored with one query and inserts the new ones
    with one statement per table. Of two deliveries with one id in the same batch, the
    first is stored and the second is a redelivery, as if they had come one after the other.
    """
    stored: set[str] = set()
    ids = [request.delivery.delivery_id for request in requests if request.delivery]
    for start in range(0, len(ids), _INSERT_CHUNK):
        some_ids = ids[start : start + _INSERT_CHUNK]
        marks = ", ".join("?" * len(some_ids))
        stored.update(
            row[0]
            for row in conn.execute(
                f"SELECT delivery_id FROM deliveries WHERE delivery_id IN ({marks})", some_ids
            )
        )
    outcomes: list[_Outcome] = []
    fresh: list[_Request] = []
    for request in requests:
        assert request.delivery is not None
        new = request.delivery.delivery_id not in stored
        stored.add(request.delivery.delivery_id)
        outcomes.append((request, True, new))
        if new:
            fresh.append(request)
    for start in range(0, len(fresh), _INSERT_CHUNK):
        chunk = fresh[start : start + _INSERT_CHUNK]
        rows: list[object] = []
        bodies: list[object] = []
        for request in chunk:
            d = request.delivery
            assert d is not None
            rows += (d.delivery_id, d.event, request.received_at, request.received_at)
            bodies += (d.delivery_id, request.deflated)
        conn.execute(
            "INSERT INTO deliveries (delivery_id, event, received_at, status, not_before)"
            " VALUES " + ", ".join(["(?, ?, ?, 'pending', ?)"] * len(chunk)),
            rows,
        )
        conn.execute(
            "INSERT INTO delivery_bodies (delivery_id, encoding, body) VALUES "
            + ", ".join(["(?, 'zlib', ?)"] * len(chunk)),
            bodies,
        )
    return outcomes


def _settle(outcomes: list[_Outcome]) -> None:
    """Hand results back: one wake-up per event loop for the whole batch."""
    per_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        request = outcome[0]
        if request.loop is None:
            future = request.future
            assert isinstance(future, concurrent.futures.Future)
            if outcome[1]:
                future.set_result(outcome[2])
            else:
                future.set_exception(outcome[2])
        else:
            per_loop.setdefault(request.loop, []).append(outcome)
    for loop, settled in per_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is waiting
            loop.call_soon_threadsafe(_settle_in_loop, settled)


def _settle_in_loop(outcomes: list[_Outcome]) -> None:
    for request, ok, value in outcomes:
        future = request.future
        if future.done():  # the caller stopped waiting
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


def _prepare(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"the queue database cannot use write-ahead logging (mode {mode})")
    # FULL: a commit is fsynced before it returns, so an acknowledged delivery survives a
    # power cut, not just a crash of this process.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # Store does it, off the commit path
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the queue database has schema version {version}; this gwi knows {SCHEMA_VERSION}"
        )
    if version == 0:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created the schema while this one waited for the lock.
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) == 0:
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _fsync_dir(path: Path) -> None:
    """Make the new database file's directory entry durable too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _expire_delivery_leases(conn: sqlite3.Connection, now: float, policy: RetryPolicy) -> int:
    # A delivery whose holder vanished this many times is probably what kills the process:
    # it is failed rather than handed to the next worker.
    cursor = conn.execute(
        "UPDATE deliveries SET"
        " status = CASE WHEN attempts >= ? THEN 'failed' ELSE 'pending' END,"
        " finished_at = CASE WHEN attempts >= ? THEN ? ELSE NULL END,"
        " last_error = 'lease expired: the worker holding it stopped (attempt '"
        "  || attempts || ')',"
        " not_before = ?, lease_owner = NULL, lease_expires = NULL"
        " WHERE status = 'processing' AND lease_expires < ?",
        (policy.max_attempts, policy.max_attempts, now, now, now),
    )
    return cursor.rowcount


def _expire_job_leases(conn: sqlite3.Connection, now: float) -> int:
    cursor = conn.execute(
        "UPDATE jobs SET"
        " status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,"
        " finished_at = CASE WHEN attempts >= max_attempts THEN ? ELSE NULL END,"
        " last_error = 'lease expired: the worker holding it stopped (attempt '"
        "  || attempts || ')',"
        " not_before = ?, lease_owner = NULL, lease_expires = NULL, updated_at = ?"
        " WHERE status = 'running' AND lease_expires < ?",
        (now, now, now, now),
    )
    return cursor.rowcount


def _check_job_lease(conn: sqlite3.Connection, job: Job, owner: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT status, lease_owner, attempts, max_attempts FROM jobs WHERE id = ?", (job.id,)
    ).fetchone()
    if row is None or row[0] != JobStatus.RUNNING or row[1] != owner:
        raise LeaseLost(f"job {job.id} is no longer held by {owner}")
    return int(row[2]), int(row[3])


def _insert_job(
    conn: sqlite3.Connection,
    spec: JobSpec,
    origin: str | None,
    now: float,
    policy: RetryPolicy,
) -> EnqueueResult:
    row = conn.execute(
        "INSERT INTO jobs (kind, key, idempotency_key, payload, status, max_attempts,"
        " not_before, origin, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        (
            spec.kind,
            spec.key,
            spec.idempotency_key,
            spec.payload_json,
            spec.max_attempts or policy.max_attempts,
            now + spec.delay,
            origin,
            now,
            now,
        ),
    ).fetchone()
    if row is not None:
        return EnqueueResult(int(row[0]), True)
    existing = conn.execute(
        "SELECT id FROM jobs WHERE idempotency_key = ?", (spec.idempotency_key,)
    ).fetchone()
    return EnqueueResult(int(existing[0]), False)


def _apply_unit(
    conn: sqlite3.Connection, unit: UnitOfWork, origin: str, now: float, policy: RetryPolicy
) -> None:
    for key, kind in unit.cancellations:
        conn.execute(
            "UPDATE jobs SET status = 'cancelled', updated_at = ?, finished_at = ?,"
            " last_error = ? WHERE key = ? AND status = 'pending'"
            " AND (? IS NULL OR kind = ?)",
            (now, now, f"cancelled by {origin}", key, kind, kind),
        )
    for spec in unit.jobs:
        _insert_job(conn, spec, origin, now, policy)


def _count(conn: sqlite3.Connection, table: str, status: str) -> int:
    return int(
        conn.execute(f"SELECT COUNT(*) FROM {table} WHERE status = ?", (status,)).fetchone()[0]
    )


def _filters(filters: Mapping[str, object]) -> tuple[str, tuple[object, ...]]:
    given = [(column, value) for column, value in filters.items() if value is not None]
    if not given:
        return "", ()
    return " WHERE " + " AND ".join(f"{column} = ?" for column, _ in given), tuple(
        value for _, value in given
    )


def _delivery(conn: sqlite3.Connection, row: Iterable[Any]) -> DeliveryRecord:
    (
        seq,
        delivery_id,
        event,
        action,
        installation_id,
        repository,
        received_at,
        status,
        attempts,
        lease_owner,
        lease_expires,
        handlers_done,
        last_error,
    ) = row
    return DeliveryRecord(
        seq=seq,
        delivery_id=delivery_id,
        event=event,
        action=action,
        installation_id=installation_id,
        repository=repository,
        received_at=received_at,
        body=_body(conn, delivery_id),
        status=DeliveryStatus(status),
        attempts=attempts,
        lease_owner=lease_owner,
        lease_expires=lease_expires,
        handlers_done=frozenset(json.loads(handlers_done)),
        last_error=last_error,
    )


def _body(conn: sqlite3.Connection, delivery_id: str) -> bytes:
    row = conn.execute(
        "SELECT encoding, body FROM delivery_bodies WHERE delivery_id = ?", (delivery_id,)
    ).fetchone()
    if row is None:
        return b""
    encoding, stored = row
    return zlib.decompress(stored) if encoding == "zlib" else bytes(stored)


def _job(row: Iterable[Any]) -> Job:
    (
        job_id,
        kind,
        key,
        idempotency_key,
        payload,
        status,
        attempts,
        max_attempts,
        not_before,
        lease_owner,
        lease_expires,
        last_error,
        origin,
        created_at,
    ) = row
    return Job(
        id=job_id,
        kind=kind,
        key=key,
        idempotency_key=idempotency_key,
        payload=json.loads(payload),
        status=JobStatus(status),
        attempts=attempts,
        max_attempts=max_attempts,
        not_before=not_before,
        lease_owner=lease_owner,
        lease_expires=lease_expires,
        last_error=last_error,
        origin=origin,
        created_at=created_at,
    )
