"""The queue's delivery and job operations as SQL, each run on the writer thread's connection."""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True, slots=True)
class Leased:
    """A leased table: its name, its key column, and the status of a held row."""

    table: str
    key: str
    held: str


DELIVERIES = Leased("deliveries", "seq", DeliveryStatus.PROCESSING.value)
JOBS = Leased("jobs", "id", JobStatus.RUNNING.value)


def expire_delivery_leases(conn: sqlite3.Connection, now: float, policy: JobRetry) -> int:
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


def expire_job_leases(conn: sqlite3.Connection, now: float) -> int:
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


def check_job_lease(conn: sqlite3.Connection, job: Job, owner: str) -> tuple[int, int]:
    row = conn.execute(
        "SELECT status, lease_owner, attempts, max_attempts FROM jobs WHERE id = ?", (job.id,)
    ).fetchone()
    if row is None or row[0] != JobStatus.RUNNING or row[1] != owner:
        raise LeaseLost(f"job {job.id} is no longer held by {owner}")
    return int(row[2]), int(row[3])


def insert_job(
    conn: sqlite3.Connection,
    spec: JobSpec,
    origin: str | None,
    now: float,
    policy: JobRetry,
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


def apply_unit(
    conn: sqlite3.Connection, unit: UnitOfWork, origin: str, now: float, policy: JobRetry
) -> None:
    for key, kind in unit.cancellations:
        conn.execute(
            "UPDATE jobs SET status = 'cancelled', updated_at = ?, finished_at = ?,"
            " last_error = ? WHERE key = ? AND status = 'pending'"
            " AND (? IS NULL OR kind = ?)",
            (now, now, f"cancelled by {origin}", key, kind, kind),
        )
    for spec in unit.jobs:
        insert_job(conn, spec, origin, now, policy)


def count(conn: sqlite3.Connection, table: str, status: str) -> int:
    return int(
        conn.execute(f"SELECT COUNT(*) FROM {table} WHERE status = ?", (status,)).fetchone()[0]
    )


def where_clause(filters: Mapping[str, object]) -> tuple[str, tuple[object, ...]]:
    given = [(column, value) for column, value in filters.items() if value is not None]
    if not given:
        return "", ()
    return " WHERE " + " AND ".join(f"{column} = ?" for column, _ in given), tuple(
        value for _, value in given
    )


def delivery_from_row(conn: sqlite3.Connection, row: Iterable[Any], *,
                      body: bool = True) -> DeliveryRecord:
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
        body=_body(conn, delivery_id) if body else b"",
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


def job_from_row(row: Iterable[Any]) -> Job:
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
