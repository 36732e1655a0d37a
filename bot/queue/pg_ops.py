"""The PostgreSQL queue's delivery and job operations as SQL, each inside a caller's transaction."""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from bot.queue.pg_runner import CHANNEL, Conn
from bot.queue.records import (
    DeliveryRecord,
    DeliveryStatus,
    EnqueueResult,
    Job,
    JobRetry,
    JobSpec,
    JobStatus,
    LeaseLost,
    UnitOfWork,
)


async def notify(conn: Conn, what: str) -> None:
    """Wake every listening process when this transaction commits (not before, not if not)."""
    await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, what))


def text(value: str | None) -> str | None:
    """A string PostgreSQL's text type takes: it has no NUL character, which SQLite and a
    payload's JSON (``"\\u0000"``) allow; a field or an error holding one keeps the rest."""
    return None if value is None else value.replace("\x00", "\ufffd")


async def one(conn: Conn, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
    cursor = await conn.execute(sql, params)
    return await cursor.fetchone()


async def expire_delivery_leases(conn: Conn, now: float, policy: JobRetry) -> int:
    # As in SQLite: a delivery whose holder vanished this many times is probably what kills
    # the process, so it is failed rather than handed to the next worker.
    cursor = await conn.execute(
        "UPDATE deliveries SET"
        " status = CASE WHEN attempts >= %(max)s THEN 'failed' ELSE 'pending' END,"
        " finished_at = CASE WHEN attempts >= %(max)s THEN %(now)s ELSE NULL END,"
        " last_error = 'lease expired: the worker holding it stopped (attempt '"
        "  || attempts || ')',"
        " not_before = %(now)s, lease_owner = NULL, lease_expires = NULL"
        " WHERE status = 'processing' AND lease_expires < %(now)s",
        {"max": policy.max_attempts, "now": now})
    return cursor.rowcount


async def expire_job_leases(conn: Conn, now: float) -> int:
    cursor = await conn.execute(
        "UPDATE jobs SET"
        " status = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'pending' END,"
        " finished_at = CASE WHEN attempts >= max_attempts THEN %(now)s ELSE NULL END,"
        " last_error = 'lease expired: the worker holding it stopped (attempt '"
        "  || attempts || ')',"
        " not_before = %(now)s, lease_owner = NULL, lease_expires = NULL, updated_at = %(now)s"
        " WHERE status = 'running' AND lease_expires < %(now)s",
        {"now": now})
    return cursor.rowcount


async def check_job_lease(conn: Conn, job: Job, owner: str) -> tuple[int, int]:
    """The job's attempts and max attempts, its row locked; LeaseLost unless ``owner`` holds it."""
    row = await one(conn, "SELECT status, lease_owner, attempts, max_attempts FROM jobs"
                          " WHERE id = %s FOR UPDATE", (job.id,))
    if row is None or row[0] != JobStatus.RUNNING or row[1] != owner:
        raise LeaseLost(f"job {job.id} is no longer held by {owner}")
    return int(row[2]), int(row[3])


async def insert_job(conn: Conn, spec: JobSpec, origin: str | None, now: float,
                     policy: JobRetry) -> EnqueueResult:
    row = await one(
        conn,
        "INSERT INTO jobs (kind, key, idempotency_key, payload, status, max_attempts,"
        " not_before, origin, created_at, updated_at)"
        " VALUES (%s, %s, %s, %s, 'pending', %s, %s, %s, %s, %s)"
        " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
        (spec.kind, spec.key, spec.idempotency_key, spec.payload_json,
         spec.max_attempts or policy.max_attempts, now + spec.delay, origin, now, now))
    if row is not None:
        await notify(conn, "job")
        return EnqueueResult(int(row[0]), True)
    existing = await one(conn, "SELECT id FROM jobs WHERE idempotency_key = %s",
                         (spec.idempotency_key,))
    return EnqueueResult(int(existing[0]), False)


async def apply_unit(conn: Conn, unit: UnitOfWork, origin: str, now: float,
                     policy: JobRetry) -> None:
    """A handler's unit of work, in the transaction that finishes its item."""
    for key, kind in unit.cancellations:
        await conn.execute(
            "UPDATE jobs SET status = 'cancelled', updated_at = %(now)s, finished_at = %(now)s,"
            " last_error = %(why)s WHERE key = %(key)s AND status = 'pending'"
            " AND (%(kind)s::text IS NULL OR kind = %(kind)s)",
            {"now": now, "why": f"cancelled by {origin}", "key": key, "kind": kind})
    for spec in unit.jobs:
        await insert_job(conn, spec, origin, now, policy)


async def count(conn: Conn, table: str, status: str) -> int:
    row = await one(conn, f"SELECT COUNT(*) FROM {table} WHERE status = %s", (status,))
    return int(row[0])


def where_clause(filters: Mapping[str, object]) -> tuple[str, tuple[object, ...]]:
    given = [(column, value) for column, value in filters.items() if value is not None]
    if not given:
        return "", ()
    return " WHERE " + " AND ".join(f"{column} = %s" for column, _ in given), tuple(
        value for _, value in given)


async def delivery_from_row(conn: Conn, row: Sequence[Any], *,
                            body: bool = True) -> DeliveryRecord:
    (seq, delivery_id, event, action, installation_id, repository, received_at, status,
     attempts, lease_owner, lease_expires, handlers_done, last_error) = row
    return DeliveryRecord(
        seq=int(seq), delivery_id=delivery_id, event=event, action=action,
        installation_id=installation_id, repository=repository, received_at=received_at,
        body=await _body(conn, delivery_id) if body else b"",
        status=DeliveryStatus(status), attempts=attempts, lease_owner=lease_owner,
        lease_expires=lease_expires, handlers_done=frozenset(json.loads(handlers_done)),
        last_error=last_error)


async def _body(conn: Conn, delivery_id: str) -> bytes:
    row = await one(conn, "SELECT encoding, body FROM delivery_bodies WHERE delivery_id = %s",
                    (delivery_id,))
    if row is None:
        return b""
    encoding, stored = row
    return zlib.decompress(stored) if encoding == "zlib" else bytes(stored)
