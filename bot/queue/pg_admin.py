"""The PostgreSQL queue's administration: listing deliveries, retrying a failed job, pruning what
finished long ago (`gwi queue`, `gwi prune`), and the deployment's signing key."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.queue.pg_ops import delivery_from_row, one, where_clause
from bot.queue.pg_runner import redact
from bot.queue.records import DeliveryRecord, DeliveryStatus
from bot.queue.schema import DELIVERY_COLUMNS

if TYPE_CHECKING:
    from bot.queue.pg_runner import Conn, Op, T


class PgAdmin:
    """Mixed into `PostgresQueueStore`, whose pool runs these operations."""

    clock: Callable[[], float]
    url: str

    if TYPE_CHECKING:  # PostgresQueueStore's own
        async def call(self, fn: Op[T]) -> T: ...

    async def list_deliveries(self, *, status: DeliveryStatus | None = None,
                              limit: int = 100) -> list[DeliveryRecord]:
        where, params = where_clause({"status": status.value if status else None})

        async def op(conn: Conn) -> list[DeliveryRecord]:
            cursor = await conn.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries{where}"
                " ORDER BY seq DESC LIMIT %s", (*params, int(limit)))
            return [await delivery_from_row(conn, row, body=False)
                    for row in await cursor.fetchall()]

        return await self.call(op)

    async def retry_job(self, job_id: int) -> bool:
        async def op(conn: Conn) -> bool:
            now = self.clock()
            cursor = await conn.execute(
                "UPDATE jobs SET status = 'pending', attempts = 0, not_before = %s,"
                " updated_at = %s, finished_at = NULL WHERE id = %s"
                " AND status IN ('failed', 'cancelled')", (now, now, int(job_id)))
            return cursor.rowcount == 1

        return await self.call(op)

    async def prune(self, before: float) -> tuple[int, int]:
        async def op(conn: Conn) -> tuple[int, int]:
            old = ("status IN ('done', 'failed') AND finished_at IS NOT NULL"
                   " AND finished_at < %s")
            # delivery_bodies rows go with their delivery (ON DELETE CASCADE).
            deliveries = (await conn.execute(
                f"DELETE FROM deliveries WHERE {old}", (before,))).rowcount
            jobs = (await conn.execute(
                "DELETE FROM jobs WHERE status IN ('done', 'failed', 'cancelled')"
                " AND finished_at IS NOT NULL AND finished_at < %s", (before,))).rowcount
            return deliveries, jobs

        return await self.call(op)

    def describe(self) -> str:
        return redact(self.url)

    async def record_signing_key(self, public_key: str) -> str:
        async def op(conn: Conn) -> str:
            await conn.execute(
                "INSERT INTO signing_key (id, public_key, recorded_at) VALUES (1, %s, %s)"
                " ON CONFLICT (id) DO NOTHING", (public_key, self.clock()))
            row = await one(conn, "SELECT public_key FROM signing_key WHERE id = 1")
            return str(row[0])

        return await self.call(op)

    async def replace_signing_key(self, old: str, new: str) -> str:
        async def op(conn: Conn) -> str:
            await conn.execute(
                "INSERT INTO signing_key (id, public_key, recorded_at) VALUES (1, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET public_key = EXCLUDED.public_key,"
                " recorded_at = EXCLUDED.recorded_at WHERE signing_key.public_key = %s",
                (new, self.clock(), old))
            row = await one(conn, "SELECT public_key FROM signing_key WHERE id = 1")
            return str(row[0])

        return await self.call(op)
