"""The PostgreSQL queue's connections: psycopg's async pool on a thread of its own, and the
LISTEN connection that wakes workers when another process stores a delivery or enqueues a job.

The pool lives in an event loop on its own thread, as SQLite's connection lives on its writer
thread: the store is opened and closed outside any event loop (the command line, the web
process's clean-up) and serves callers from any loop. Each operation is one transaction on one
pooled connection; once submitted it runs to its commit even if its caller stops waiting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from bot import logs
from bot.queue.pg_schema import migrate
from bot.queue.records import StoreError

T = TypeVar("T")
Conn = psycopg.AsyncConnection[tuple[Any, ...]]
Op = Callable[[Conn], Awaitable[T]]

#: The channel a commit that stores a delivery or enqueues a job notifies ("delivery", "job").
CHANNEL = "gwi_queue"
#: libpq's connect timeout (whole seconds, at least 2) and how long an operation waits for a
#: pooled connection: with the database gone, callers get a StoreError within seconds.
CONNECT_TIMEOUT = 3
POOL_TIMEOUT = 5.0
POOL_MAX_SIZE = 10

log = logs.get_logger("gwi.queue")


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


Wake = Callable[[str], None]


def _settled(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class PgRunner:
    """The thread, its loop, the pool, and the listener (started on the first subscriber)."""

    def __init__(self, url: str, *, max_size: int = POOL_MAX_SIZE) -> None:
        self.url = url
        self._closed = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gwi-pg",
                                        daemon=True)
        self._thread.start()
        self._subscribers: dict[int, tuple[asyncio.AbstractEventLoop, Wake]] = {}
        self._next_subscriber = 0
        self._listener: asyncio.Task[None] | None = None
        self._pool: AsyncConnectionPool[Conn] | None = None
        try:
            self._pool = self._submit(self._open(max_size)).result()
        except BaseException:
            self._stop_thread()
            raise

    async def _open(self, max_size: int) -> AsyncConnectionPool[Conn]:
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.url, min_size=1, max_size=max_size, open=False, timeout=POOL_TIMEOUT,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            # A connection that died with the server (a restart) is found before use, not by
            # the operation that would fail on it.
            check=AsyncConnectionPool.check_connection,
            name="gwi-queue")
        try:
            await pool.open(wait=True, timeout=POOL_TIMEOUT)
            async with pool.connection() as conn:
                await migrate(conn)
        except PoolTimeout as exc:
            await pool.close()
            raise StoreError(f"cannot reach the queue database {redact(self.url)} within"
                             f" {POOL_TIMEOUT:g} s: {exc}") from None
        except psycopg.Error as exc:
            await pool.close()
            raise StoreError(f"cannot use the queue database {redact(self.url)}: {exc}") from None
        except BaseException:
            await pool.close()
            raise
        return pool

    def _submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def call(self, fn: Op[T], *, transaction: bool = True) -> T:
        """Run ``await fn(connection)`` in one transaction; await its commit.

        Once submitted, the operation runs even if the caller stops waiting. A database that
        does not answer or went away is a :class:`StoreError`; other errors (a constraint)
        come as psycopg raised them, after the transaction was rolled back. An operation of
        one statement may pass ``transaction=False``: in autocommit that statement is its own
        transaction, two round trips (BEGIN, COMMIT) fewer."""
        if self._closed:
            raise StoreError("the queue database is closed")
        waited = asyncio.wrap_future(self._submit(self._in_transaction(fn, transaction)))
        try:
            return await asyncio.shield(waited)
        except asyncio.CancelledError:
            # The caller stopped waiting (a request's timeout); the operation goes on, and
            # its outcome, nobody's now, is not reported as an error never retrieved.
            waited.add_done_callback(_settled)
            raise

    def call_sync(self, fn: Op[T]) -> T:
        """:meth:`call` for code outside the event loop (command line, tests)."""
        if self._closed:
            raise StoreError("the queue database is closed")
        return self._submit(self._in_transaction(fn)).result()

    async def _in_transaction(self, fn: Op[T], transaction: bool = True) -> T:
        assert self._pool is not None
        try:
            async with self._pool.connection() as conn:
                if not transaction:
                    return await fn(conn)
                async with conn.transaction():
                    return await fn(conn)
        except PoolTimeout as exc:
            raise StoreError(f"the queue database did not answer: {exc}") from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreError(f"the queue database failed: {exc}") from None

    # -- wake-ups ------------------------------------------------------------------------

    def subscribe(self, wake: Wake) -> Callable[[], None]:
        """Call ``wake("delivery")`` or ``wake("job")`` (in the caller's event loop) whenever
        any process commits one; returns the way to stop. A reconnection wakes for both,
        since what was committed meanwhile went unheard."""
        loop = asyncio.get_running_loop()
        number = self._next_subscriber
        self._next_subscriber += 1
        self._subscribers[number] = (loop, wake)
        if self._listener is None and not self._closed:
            self._listener = self._submit(self._start_listener()).result()
        return lambda: self._subscribers.pop(number, None) and None

    async def _start_listener(self) -> asyncio.Task[None]:
        return asyncio.create_task(self._listen_forever())

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT)
                async with conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    delay = 0.5
                    self._fan_out("delivery")
                    self._fan_out("job")
                    async for note in conn.notifies():
                        self._fan_out(note.payload)
            except psycopg.Error as exc:
                log.warning("queue.listen_failed", error=str(exc), retry_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    def _fan_out(self, what: str) -> None:
        for loop, wake in list(self._subscribers.values()):
            try:
                loop.call_soon_threadsafe(wake, what)
            except RuntimeError:  # that loop has closed
                continue

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        """Let submitted operations finish, close the connections, stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._submit(self._shutdown()).result()
        self._stop_thread()

    async def _shutdown(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._pool is not None:
            await self._pool.close()

    def _stop_thread(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
