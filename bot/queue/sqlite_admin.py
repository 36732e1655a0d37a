"""The SQLite queue's administration: listing deliveries, retrying a failed job, pruning what
finished long ago (`gwi queue`, `gwi prune`), and the signing key recorded beside the queue."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bot.queue.records import DeliveryRecord, DeliveryStatus
from bot.queue.schema import DELIVERY_COLUMNS
from bot.queue.sqlite_ops import delivery_from_row, where_clause

T = TypeVar("T")


class SqliteAdmin:
    """Mixed into `SqliteQueueStore`, whose writer runs these operations."""

    clock: Callable[[], float]
    path: Path

    if TYPE_CHECKING:  # SqliteQueueStore's own
        async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...

    async def list_deliveries(self, *, status: DeliveryStatus | None = None,
                              limit: int = 100) -> list[DeliveryRecord]:
        where, params = where_clause({"status": status})

        def op(conn: sqlite3.Connection) -> list[DeliveryRecord]:
            rows = conn.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries{where} ORDER BY seq DESC LIMIT ?",
                (*params, int(limit))).fetchall()
            return [delivery_from_row(conn, row, body=False) for row in rows]

        return await self.call(op)

    async def retry_job(self, job_id: int) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            now = self.clock()
            cursor = conn.execute(
                "UPDATE jobs SET status = 'pending', attempts = 0, not_before = ?,"
                " updated_at = ?, finished_at = NULL WHERE id = ?"
                " AND status IN ('failed', 'cancelled')", (now, now, int(job_id)))
            return cursor.rowcount == 1

        return await self.call(op)

    async def prune(self, before: float) -> tuple[int, int]:
        def op(conn: sqlite3.Connection) -> tuple[int, int]:
            old = "status IN ('done', 'failed') AND finished_at IS NOT NULL AND finished_at < ?"
            conn.execute("DELETE FROM delivery_bodies WHERE delivery_id IN"
                         f" (SELECT delivery_id FROM deliveries WHERE {old})", (before,))
            deliveries = conn.execute(f"DELETE FROM deliveries WHERE {old}", (before,)).rowcount
            jobs = conn.execute(
                "DELETE FROM jobs WHERE status IN ('done', 'failed', 'cancelled')"
                " AND finished_at IS NOT NULL AND finished_at < ?", (before,)).rowcount
            return deliveries, jobs

        return await self.call(op)

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    async def record_signing_key(self, public_key: str) -> str:
        def op(conn: sqlite3.Connection) -> str:
            _signing_key_table(conn)
            conn.execute("INSERT OR IGNORE INTO signing_key VALUES (1, ?, ?)",
                         (public_key, self.clock()))
            return str(conn.execute("SELECT public_key FROM signing_key").fetchone()[0])

        return await self.call(op)

    async def replace_signing_key(self, old: str, new: str) -> str:
        def op(conn: sqlite3.Connection) -> str:
            _signing_key_table(conn)
            conn.execute("INSERT INTO signing_key VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE"
                         " SET public_key = excluded.public_key, recorded_at ="
                         " excluded.recorded_at WHERE signing_key.public_key = ?",
                         (new, self.clock(), old))
            return str(conn.execute("SELECT public_key FROM signing_key").fetchone()[0])

        return await self.call(op)


def _signing_key_table(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS signing_key (id INTEGER PRIMARY KEY"
                 " CHECK (id = 1), public_key TEXT NOT NULL, recorded_at REAL NOT NULL)")
