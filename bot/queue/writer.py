"""The SQLite queue's writer: one thread owns the only connection and commits in groups.

Every read and write goes through this thread. It takes whatever is waiting and commits it in
one transaction (group commit): under load one fsync covers many deliveries, and a caller's
``await`` returns only once its work is on disk (WAL, ``synchronous=FULL``). Deliveries go in
with one bulk statement per batch; other operations each run in their own savepoint, so one
that raises is undone alone. Two helper threads keep slow work off that path: one deflates
bodies, one checkpoints the WAL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bot import logs
from bot.queue.records import Delivery, StoreError
from bot.queue.schema import BUSY_TIMEOUT_MS

# One transaction never holds more operations than this, so no caller waits behind an
# unbounded batch.
MAX_BATCH = 256
# Bodies are stored deflated: webhook JSON shrinks about ninefold, and fewer bytes to write
# is what lets one fsync cover many deliveries. zlib releases the GIL while it works.
BODY_COMPRESSION = 1
CHECKPOINT_QUIET_SECONDS = 0.25
# Under unbroken load the writer checkpoints itself once the WAL file is this large. The
# file is cut back to WAL_SIZE_LIMIT (smaller) when the log restarts, so a file this large
# really holds this much log.
CHECKPOINT_WAL_BYTES = 64 * 1024 * 1024

T = TypeVar("T")

log = logs.get_logger("gwi.queue")


@dataclass(slots=True)
class Request:
    """One piece of work for the writer: an operation, or a delivery to insert (the hot path
    gets a bulk statement). ``loop`` is set when ``future`` is an asyncio future."""

    fn: Callable[[sqlite3.Connection], Any] | None
    delivery: Delivery | None
    deflated: bytes
    received_at: float
    future: asyncio.Future[Any] | concurrent.futures.Future[Any]
    loop: asyncio.AbstractEventLoop | None


_Outcome = tuple[Request, bool, Any]  # request, succeeded, result or exception


class Writer:
    """The writer thread and its two helpers, around one open connection."""

    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        self.path = path
        self._conn = connection
        self._wal = Path(f"{path}-wal")
        self._inbox: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
        self._to_deflate: queue.SimpleQueue[Request | None] = queue.SimpleQueue()
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

    async def insert_delivery(self, delivery: Delivery, received_at: float) -> bool:
        """Deflate, then insert a delivery in the next batch; False when its id is stored."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        if self._closed:
            raise StoreError("the queue database is closed")
        self._to_deflate.put(Request(None, delivery, b"", received_at, future, loop))
        return await future

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the writer thread, in a transaction; await its commit.

        Once submitted, the operation runs even if the caller stops waiting.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._put(Request(fn, None, b"", 0.0, future, loop))
        return await future

    def call_sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """:meth:`call` for code outside the event loop (command line, tests)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._put(Request(fn, None, b"", 0.0, future, None))
        return future.result()

    def _put(self, request: Request) -> None:
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

    def _run_batch(self, batch: list[Request]) -> list[_Outcome]:
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


# Rows per bulk INSERT: well under SQLite's limit on bound parameters.
_INSERT_CHUNK = 100


def _insert_deliveries(conn: sqlite3.Connection, requests: list[Request]) -> list[_Outcome]:
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
    fresh: list[Request] = []
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


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
