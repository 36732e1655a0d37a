"""The run store in PostgreSQL: every bundle readable and writable from any host.

A run is rows: its audit lines (``run_audit``, each line's bytes exactly as hashed), its
artifacts' current bytes (``run_artifacts``) and the signatures its lines hold
(``run_signatures``); the tables and their migrations are in `bot.runs.pg_bundle_schema`.

The write-ahead order becomes one transaction: `append` stores an audit line, the artifact it
records and the signature it carries together, so a crash (of the process, the host or the
database) leaves all of them or none, never an artifact without its line or a line without its
artifact; a step cut short between two appends is finished on reopening exactly as in the
folder store (`bot.runs.reopen`). The run's lock is a session advisory lock
(``pg_advisory_lock``) held on one pooled connection for the whole of `RunStore.open` /
`RunStore.create`; every write of that run goes through that connection, and a process that dies
holding it loses its session, which releases the lock.

The store is synchronous, like the folder store (callers already run it off their event loop):
psycopg's thread-safe connection pool, no loop of its own.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.errors import GwiError
from bot.runs.audit import Chain
from bot.runs.bundle import RunNotFound
from bot.runs.ids import AUDIT_LOG, check_artifact_name, check_run_id
from bot.runs.pg_bundle_schema import migrate
from bot.runs.store import RunStore

Conn = psycopg.Connection[tuple[Any, ...]]

#: The first key of every run's advisory lock (the second is the hash of its id): "gwir".
RUN_LOCK_SPACE = 0x67777172
CONNECT_TIMEOUT = 3
#: How long an operation waits for a pooled connection; each open run holds one.
POOL_TIMEOUT = 30.0
POOL_MAX_SIZE = 16


class RunStoreUnavailable(GwiError):
    """The run store's database cannot be reached or used."""


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


class PostgresRunStore(RunStore):
    """All runs of a deployment in one PostgreSQL database. Open it with :meth:`connect`."""

    def __init__(self, url: str, pool: ConnectionPool[Conn], signing_key: Path, *,
                 key_in_work_tree: bool = False) -> None:
        super().__init__(signing_key, key_in_work_tree=key_in_work_tree)
        self.url = url
        self._pool = pool
        # run id -> (thread, connection) for each run this process holds the lock of.
        self._held: dict[str, tuple[int, Conn]] = {}

    @classmethod
    def connect(cls, url: str, signing_key: Path, *, key_in_work_tree: bool = False,
             max_size: int = POOL_MAX_SIZE) -> PostgresRunStore:
        """Connect, bring the tables up to date (`bot.runs.pg_bundle_schema`), start the pool."""
        pool: ConnectionPool[Conn] = ConnectionPool(
            url, min_size=1, max_size=max_size, open=False, timeout=POOL_TIMEOUT,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT},
            check=ConnectionPool.check_connection, name="gwi-runs")
        try:
            pool.open(wait=True, timeout=CONNECT_TIMEOUT * 2)
            with pool.connection() as conn:
                migrate(conn)
        except PoolTimeout as exc:
            pool.close()
            raise RunStoreUnavailable(
                f"cannot reach the run store's database {redact(url)}: {exc}") from None
        except psycopg.Error as exc:
            pool.close()
            raise RunStoreUnavailable(
                f"cannot use the run store's database {redact(url)}: {exc}") from None
        except BaseException:
            pool.close()
            raise
        return cls(url, pool, signing_key, key_in_work_tree=key_in_work_tree)

    def close(self) -> None:
        self._pool.close()

    @contextmanager
    def _conn(self, run_id: str | None = None) -> Iterator[Conn]:
        """The connection this thread holds the run's lock on, else a pooled one."""
        held = self._held.get(run_id) if run_id else None
        if held is not None and held[0] == threading.get_ident():
            yield held[1]
            return
        try:
            with self._pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise RunStoreUnavailable(f"the run store's database did not answer: {exc}") from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise RunStoreUnavailable(f"the run store's database failed: {exc}") from None

    # -- finding and reading ---------------------------------------------------------------------
    def location(self, run_id: str, name: str | None = None) -> str:
        what = f"{check_artifact_name(name)} of run" if name else "run"
        return (f"{what} {check_run_id(run_id)} in PostgreSQL at {redact(self.url)}"
                f" (`gwi runs export {run_id} DIR` writes it out)")

    def exists(self, run_id: str) -> bool:
        with self._conn(run_id) as conn:
            row = conn.execute("SELECT 1 FROM run_audit WHERE run_id = %s AND seq = 0",
                               (check_run_id(run_id),)).fetchone()
        return row is not None

    def list_ids(self, since: str | None = None) -> list[str]:
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT run_id FROM run_audit WHERE seq = 0 AND run_id >= %s ORDER BY run_id",
                (since or "",)).fetchall()
        return [str(row[0]) for row in rows]

    def read_bytes(self, run_id: str, name: str) -> bytes | None:
        check_run_id(run_id)
        check_artifact_name(name)
        with self._conn(run_id) as conn:
            if name == AUDIT_LOG:
                lines = conn.execute("SELECT line FROM run_audit WHERE run_id = %s ORDER BY seq",
                                     (run_id,)).fetchall()
                if not lines:
                    raise RunNotFound(f"no run {run_id} in {redact(self.url)}")
                return b"".join(bytes(row[0]) for row in lines)
            row = conn.execute("SELECT body FROM run_artifacts WHERE run_id = %s AND name = %s",
                               (run_id, name)).fetchone()
        if row is not None:
            return bytes(row[0])
        if not self.exists(run_id):
            raise RunNotFound(f"no run {run_id} in {redact(self.url)}")
        return None

    def snapshot(self, run_id: str) -> dict[str, bytes]:
        check_run_id(run_id)
        with self._conn(run_id) as conn, conn.transaction():
            # One snapshot of both tables: a writer committing meanwhile is not half seen.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            lines = conn.execute("SELECT line FROM run_audit WHERE run_id = %s ORDER BY seq",
                                 (run_id,)).fetchall()
            bodies = conn.execute("SELECT name, body FROM run_artifacts WHERE run_id = %s",
                                  (run_id,)).fetchall()
        if not lines:
            raise RunNotFound(f"no run {run_id} in {redact(self.url)}")
        files = {str(name): bytes(body) for name, body in bodies}
        files[AUDIT_LOG] = b"".join(bytes(row[0]) for row in lines)
        return files

    # -- writing ---------------------------------------------------------------------------------
    @contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        key = (RUN_LOCK_SPACE, check_run_id(run_id))
        with self._conn() as conn:
            conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", key)
            self._held[run_id] = (threading.get_ident(), conn)
            try:
                yield
            finally:
                del self._held[run_id]
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)
                except psycopg.Error:
                    pass  # the session is gone, and its locks with it

    def append(self, run_id: str, line: bytes, artifact: tuple[str, bytes] | None) -> None:
        held = self._held.get(run_id)
        if held is None or held[0] != threading.get_ident():
            raise GwiError(f"run {run_id} is written only by the thread holding its lock")
        conn = held[1]
        event = json.loads(line)
        seq, data = int(event["seq"]), event["data"]
        with conn.transaction():
            conn.execute("INSERT INTO run_audit (run_id, seq, action, hash, line)"
                         " VALUES (%s, %s, %s, %s, %s)",
                         (run_id, seq, event["action"], event["hash"], line))
            if artifact is not None:
                name, body = artifact
                conn.execute(
                    "INSERT INTO run_artifacts (run_id, name, sha256, body, written_seq)"
                    " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (run_id, name) DO UPDATE SET"
                    " sha256 = EXCLUDED.sha256, body = EXCLUDED.body,"
                    " written_seq = EXCLUDED.written_seq",
                    (run_id, name, data["sha256"], body, seq))
            if "signature" in data and "public_key" in data:
                kind = "final" if event["action"] == "audit_signed" else "seal"
                conn.execute("INSERT INTO run_signatures (run_id, seq, kind, public_key,"
                             " signature) VALUES (%s, %s, %s, %s, %s)",
                             (run_id, seq, kind, data["public_key"], data["signature"]))

    def settle(self, run_id: str, raw_log: bytes, chain: Chain) -> list[str]:
        # A line and its artifact commit together: a crash leaves no torn line and no write in
        # flight. (A step cut short between two appends is finished by bot.runs.reopen.)
        if chain.torn_tail:
            raise GwiError(f"run {run_id}: a stored audit line lacks its newline")
        return []

    def remove(self, run_id: str) -> None:
        with self._conn(run_id) as conn, conn.transaction():
            for table in ("run_signatures", "run_artifacts", "run_audit"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = %s", (run_id,))
