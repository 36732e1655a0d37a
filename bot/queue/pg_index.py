"""The PR index and the redelivery ledger in PostgreSQL, beside the queue's tables.

The same semantics as the SQLite ones (bot/queue/pr_index.py, bot/queue/redelivery.py); what
several processes could race on is settled by the database: an anchor's first hash stays
(``ON CONFLICT DO NOTHING``), a budget is counted under a per-scope advisory lock, and the
marker of the delivery log only moves forward (``GREATEST``).
"""

from __future__ import annotations

import time
from typing import Any

from bot.queue.interface import RedeliveryLedger, RunIndex
from bot.queue.pg_ops import one
from bot.queue.pg_runner import Conn, PgRunner
from bot.queue.pg_schema import migrate
from bot.queue.pr_index import MAX_WINDOW
from bot.queue.records import IndexedRun

_COLUMNS = ("run_id, repository, pr, head_sha, base_sha, check_run_id, created_at, finished,"
            " published_state")


def _run(row: Any) -> IndexedRun:
    run_id, repository, pr, head, base, check, created, finished, published = row
    return IndexedRun(run_id, repository, int(pr), head, base,
                      None if check is None else int(check), float(created), bool(finished),
                      published)


class PgRunIndex(RunIndex):
    """The PR index as tables of the queue's PostgreSQL database."""

    def __init__(self, runner: PgRunner) -> None:
        self._runner = runner

    async def ensure_schema(self) -> None:
        # The tables come with the queue's migrations; this brings a database that another
        # process has not migrated yet up to date (the migrations run once, under their lock).
        await self._runner.call(migrate)

    async def add(self, run_id: str, repository: str, pr: int, head_sha: str,
                  base_sha: str) -> None:
        now = time.time()
        await self._runner.call(lambda conn: conn.execute(
            "INSERT INTO pr_runs (run_id, repository, pr, head_sha, base_sha, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (run_id, repository.lower(), pr, head_sha, base_sha, now)))

    async def set_check_run(self, run_id: str, check_run_id: int) -> None:
        await self._runner.call(lambda conn: conn.execute(
            "UPDATE pr_runs SET check_run_id = %s WHERE run_id = %s", (check_run_id, run_id)))

    async def set_finished(self, run_id: str) -> None:
        await self._runner.call(lambda conn: conn.execute(
            "UPDATE pr_runs SET finished = 1 WHERE run_id = %s", (run_id,)))

    async def set_published(self, run_id: str, state: str, *, finished: bool) -> None:
        await self._runner.call(lambda conn: conn.execute(
            "UPDATE pr_runs SET published_state = %s, finished = GREATEST(finished, %s)"
            " WHERE run_id = %s", (state, int(finished), run_id)))

    async def record_anchor(self, run_id: str, seq: int, digest: str) -> None:
        now = time.time()
        await self._runner.call(lambda conn: conn.execute(
            "INSERT INTO run_anchors (run_id, seq, hash, at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (run_id, seq) DO NOTHING", (run_id, int(seq), digest, now)))

    async def latest_anchor(self, run_id: str) -> tuple[int, str] | None:
        async def op(conn: Conn) -> tuple[int, str] | None:
            row = await one(conn, "SELECT seq, hash FROM run_anchors WHERE run_id = %s"
                                  " ORDER BY seq DESC LIMIT 1", (run_id,))
            return None if row is None else (int(row[0]), str(row[1]))

        return await self._runner.call(op)

    async def unfinished(self) -> list[IndexedRun]:
        return await self._select(f"SELECT {_COLUMNS} FROM pr_runs WHERE finished = 0"
                                  " ORDER BY created_at, ord", ())

    async def known(self, run_ids: list[str]) -> set[str]:
        async def op(conn: Conn) -> set[str]:
            cursor = await conn.execute("SELECT run_id FROM pr_runs WHERE run_id = ANY(%s)",
                                        (list(run_ids),))
            return {row[0] for row in await cursor.fetchall()}

        return await self._runner.call(op)

    async def get(self, run_id: str) -> IndexedRun | None:
        runs = await self._select(f"SELECT {_COLUMNS} FROM pr_runs WHERE run_id = %s", (run_id,))
        return runs[0] if runs else None

    async def for_pr(self, repository: str, pr: int) -> list[IndexedRun]:
        return await self._select(f"SELECT {_COLUMNS} FROM pr_runs WHERE repository = %s"
                                  " AND pr = %s ORDER BY created_at, ord",
                                  (repository.lower(), pr))

    async def _select(self, sql: str, params: tuple[Any, ...]) -> list[IndexedRun]:
        async def op(conn: Conn) -> list[IndexedRun]:
            cursor = await conn.execute(sql, params)
            return [_run(row) for row in await cursor.fetchall()]

        return await self._runner.call(op)

    async def forget(self, run_ids: list[str]) -> int:
        async def op(conn: Conn) -> int:
            ids = list(run_ids)
            gone = (await conn.execute("DELETE FROM pr_runs WHERE run_id = ANY(%s)",
                                       (ids,))).rowcount
            await conn.execute("DELETE FROM run_anchors WHERE run_id = ANY(%s)", (ids,))
            return gone

        return await self._runner.call(op)

    async def take_slot(self, scope: str, *, limit: int, window: float) -> bool:
        now = time.time()
        window = min(window, MAX_WINDOW)

        async def op(conn: Conn) -> bool:
            # Processes counting the same scope take turns: the count and the insert are one.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"slot:{scope}",))
            await conn.execute("DELETE FROM rate_slots WHERE (scope = %s AND at < %s) OR at < %s",
                               (scope, now - window, now - MAX_WINDOW))
            (used,) = await one(conn, "SELECT COUNT(*) FROM rate_slots WHERE scope = %s"
                                      " AND at >= %s", (scope, now - window))
            if used >= limit:
                return False
            await conn.execute("INSERT INTO rate_slots (scope, at) VALUES (%s, %s)", (scope, now))
            return True

        return await self._runner.call(op)


class PgRedeliveryLedger(RedeliveryLedger):
    """Downtime recovery's memory, in the queue's PostgreSQL database."""

    def __init__(self, runner: PgRunner) -> None:
        self._runner = runner

    async def start_point(self) -> float | None:
        async def op(conn: Conn) -> float | None:
            (received,) = await one(conn, "SELECT MAX(received_at) FROM deliveries")
            marker = await one(conn, "SELECT seen_until FROM webhook_marker WHERE id = 1")
            found = [float(v) for v in (received, marker[0] if marker else None)
                     if v is not None]
            return max(found) if found else None

        return await self._runner.call(op)

    async def save_marker(self, seen_until: float) -> None:
        await self._runner.call(lambda conn: conn.execute(
            "INSERT INTO webhook_marker (id, seen_until) VALUES (1, %s) ON CONFLICT (id)"
            " DO UPDATE SET seen_until = GREATEST(webhook_marker.seen_until,"
            " excluded.seen_until)", (seen_until,)))

    async def known(self, guids: list[str], patience: float) -> tuple[set[str], set[str]]:
        async def op(conn: Conn) -> tuple[set[str], set[str]]:
            ids = list(guids)
            stored = await conn.execute(
                "SELECT delivery_id FROM deliveries WHERE delivery_id = ANY(%s)", (ids,))
            pending = await conn.execute(
                "SELECT guid FROM webhook_redeliveries WHERE guid = ANY(%s)"
                " AND requested_at >= %s", (ids, patience))
            return ({row[0] for row in await stored.fetchall()},
                    {row[0] for row in await pending.fetchall()})

        return await self._runner.call(op)

    async def remember(self, guid: str, github_id: int, at: float) -> None:
        await self._runner.call(lambda conn: conn.execute(
            "INSERT INTO webhook_redeliveries (guid, github_id, requested_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (guid) DO UPDATE SET"
            " github_id = excluded.github_id, requested_at = excluded.requested_at",
            (guid, github_id, at)))
