"""The redelivery ledger in the queue's SQLite file: how far back GitHub's delivery log was
read, and which deliveries gwi has already asked GitHub to send again."""

from __future__ import annotations

import sqlite3

from bot.queue.interface import RedeliveryLedger
from bot.queue.writer import Writer

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS webhook_redeliveries (
        guid TEXT PRIMARY KEY,
        github_id INTEGER NOT NULL,
        requested_at REAL NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS webhook_marker (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seen_until REAL NOT NULL
    )""",
)


class SqliteRedeliveryLedger(RedeliveryLedger):
    def __init__(self, writer: Writer) -> None:
        self._writer = writer

    async def start_point(self) -> float | None:
        return await self._writer.call(_prepare_and_read_marker)

    async def save_marker(self, seen_until: float) -> None:
        await self._writer.call(lambda conn: _save_marker(conn, seen_until))

    async def known(self, guids: list[str], patience: float) -> tuple[set[str], set[str]]:
        return await self._writer.call(lambda conn: _known(conn, guids, patience))

    async def remember(self, guid: str, github_id: int, at: float) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO webhook_redeliveries (guid, github_id, requested_at) VALUES (?, ?, ?)"
                " ON CONFLICT (guid) DO UPDATE SET"
                " github_id = excluded.github_id, requested_at = excluded.requested_at",
                (guid, github_id, at),
            )

        await self._writer.call(op)


def _prepare_and_read_marker(conn: sqlite3.Connection) -> float | None:
    """Where to start looking: the later of the newest stored delivery and the last look."""
    for statement in SCHEMA:
        conn.execute(statement)
    (received,) = conn.execute("SELECT MAX(received_at) FROM deliveries").fetchone()
    marker = conn.execute("SELECT seen_until FROM webhook_marker WHERE id = 1").fetchone()
    found = [float(v) for v in (received, marker[0] if marker else None) if v is not None]
    return max(found) if found else None


def _save_marker(conn: sqlite3.Connection, seen_until: float) -> None:
    conn.execute(
        "INSERT INTO webhook_marker (id, seen_until) VALUES (1, ?)"
        " ON CONFLICT (id) DO UPDATE SET seen_until = MAX(seen_until, excluded.seen_until)",
        (seen_until,),
    )


def _known(
    conn: sqlite3.Connection, guids: list[str], patience: float
) -> tuple[set[str], set[str]]:
    """Of ``guids``: those stored as deliveries, and those redelivered too recently to ask."""
    stored: set[str] = set()
    pending: set[str] = set()
    for start in range(0, len(guids), 500):
        chunk = guids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        stored.update(
            row[0]
            for row in conn.execute(
                f"SELECT delivery_id FROM deliveries WHERE delivery_id IN ({marks})", chunk
            )
        )
        pending.update(
            row[0]
            for row in conn.execute(
                f"SELECT guid FROM webhook_redeliveries WHERE guid IN ({marks})"
                " AND requested_at >= ?",
                (*chunk, patience),
            )
        )
    return stored, pending
