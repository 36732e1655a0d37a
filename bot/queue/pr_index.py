"""The index of pull-request runs: which run belongs to which PR and head, and its check-run.

The run bundles are the truth; this table (in the queue database, through its one writer) only
makes "the current run of PR #7" and "is there a run for this head already?" fast, and remembers
what GitHub was last shown of each run, so a restart can tell what still needs publishing.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from bot.queue.interface import RunIndex
from bot.queue.records import IndexedRun
from bot.queue.writer import Writer

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS pr_runs (
        run_id TEXT PRIMARY KEY,
        repository TEXT NOT NULL,
        pr INTEGER NOT NULL,
        head_sha TEXT NOT NULL,
        base_sha TEXT NOT NULL,
        check_run_id INTEGER,
        created_at REAL NOT NULL,
        finished INTEGER NOT NULL DEFAULT 0,
        published_state TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS pr_runs_by_pr ON pr_runs (repository, pr, created_at)",
    # Budgets: what gwi did, and for whom, in a sliding window (`take_slot`).
    """CREATE TABLE IF NOT EXISTS rate_slots (
        scope TEXT NOT NULL,
        at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS rate_slots_by_scope ON rate_slots (scope, at)",
    "DROP TABLE IF EXISTS pr_replies",  # the per-PR reply budget before rate_slots
    """CREATE TABLE IF NOT EXISTS run_anchors (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID""",
)


#: Slots older than this are dropped whatever their scope (no budget looks further back).
MAX_WINDOW = 86_400.0


def _row(row: tuple[Any, ...]) -> IndexedRun:
    run_id, repository, pr, head, base, check, created, finished, published = row
    return IndexedRun(run_id, repository, int(pr), head, base,
                      None if check is None else int(check), float(created), bool(finished),
                      published)


_COLUMNS = ("run_id, repository, pr, head_sha, base_sha, check_run_id, created_at, finished,"
            " published_state")


class SqliteRunIndex(RunIndex):
    """The PR index as two tables of the queue's SQLite file, written by its one writer."""

    def __init__(self, writer: Writer) -> None:
        self.store = writer

    async def ensure_schema(self) -> None:
        def op(conn: sqlite3.Connection) -> None:
            for statement in SCHEMA:
                conn.execute(statement)
            columns = {row[1] for row in conn.execute("PRAGMA table_info(pr_runs)")}
            if "published_state" not in columns:  # a database from before the column
                conn.execute("ALTER TABLE pr_runs ADD COLUMN published_state TEXT")

        await self.store.call(op)

    async def add(self, run_id: str, repository: str, pr: int, head_sha: str,
                  base_sha: str) -> None:
        now = time.time()

        def op(conn: sqlite3.Connection) -> None:
            conn.execute(f"INSERT INTO pr_runs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, ?, 0, NULL)",
                         (run_id, repository.lower(), pr, head_sha, base_sha, now))

        await self.store.call(op)

    async def set_check_run(self, run_id: str, check_run_id: int) -> None:
        await self.store.call(lambda conn: conn.execute(
            "UPDATE pr_runs SET check_run_id = ? WHERE run_id = ?", (check_run_id, run_id)))

    async def set_finished(self, run_id: str) -> None:
        await self.store.call(lambda conn: conn.execute(
            "UPDATE pr_runs SET finished = 1 WHERE run_id = ?", (run_id,)))

    async def set_published(self, run_id: str, state: str, *, finished: bool) -> None:
        """Record that GitHub shows the run at ``state`` (a stop), finished or not."""
        await self.store.call(lambda conn: conn.execute(
            "UPDATE pr_runs SET published_state = ?, finished = MAX(finished, ?)"
            " WHERE run_id = ?", (state, int(finished), run_id)))

    async def record_anchor(self, run_id: str, seq: int, digest: str) -> None:
        now = time.time()
        await self.store.call(lambda conn: conn.execute(
            "INSERT OR IGNORE INTO run_anchors (run_id, seq, hash, at) VALUES (?, ?, ?, ?)",
            (run_id, int(seq), digest, now)))

    async def latest_anchor(self, run_id: str) -> tuple[int, str] | None:
        def op(conn: sqlite3.Connection) -> tuple[int, str] | None:
            row = conn.execute("SELECT seq, hash FROM run_anchors WHERE run_id = ?"
                               " ORDER BY seq DESC LIMIT 1", (run_id,)).fetchone()
            return None if row is None else (int(row[0]), str(row[1]))

        return await self.store.call(op)

    async def unfinished(self) -> list[IndexedRun]:
        """Runs whose final check-run GitHub has not been shown yet, oldest first."""
        def op(conn: sqlite3.Connection) -> list[IndexedRun]:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM pr_runs WHERE finished = 0"
                                " ORDER BY created_at, rowid").fetchall()
            return [_row(r) for r in rows]

        return await self.store.call(op)

    async def known(self, run_ids: list[str]) -> set[str]:
        """Which of ``run_ids`` the index has."""
        def op(conn: sqlite3.Connection) -> set[str]:
            found: set[str] = set()
            for start in range(0, len(run_ids), 500):
                chunk = run_ids[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                found.update(row[0] for row in conn.execute(
                    f"SELECT run_id FROM pr_runs WHERE run_id IN ({marks})", chunk))
            return found

        return await self.store.call(op)

    async def get(self, run_id: str) -> IndexedRun | None:
        def op(conn: sqlite3.Connection) -> IndexedRun | None:
            row = conn.execute(f"SELECT {_COLUMNS} FROM pr_runs WHERE run_id = ?",
                               (run_id,)).fetchone()
            return _row(row) if row else None

        return await self.store.call(op)

    async def for_pr(self, repository: str, pr: int) -> list[IndexedRun]:
        """The PR's runs, oldest first."""
        def op(conn: sqlite3.Connection) -> list[IndexedRun]:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM pr_runs WHERE repository = ? AND pr = ?"
                " ORDER BY created_at, rowid", (repository.lower(), pr)).fetchall()
            return [_row(r) for r in rows]

        return await self.store.call(op)

    async def forget(self, run_ids: list[str]) -> int:
        def op(conn: sqlite3.Connection) -> int:
            gone = 0
            for start in range(0, len(run_ids), 500):
                chunk = run_ids[start:start + 500]
                marks = ", ".join("?" * len(chunk))
                gone += conn.execute(f"DELETE FROM pr_runs WHERE run_id IN ({marks})",
                                     chunk).rowcount
                conn.execute(f"DELETE FROM run_anchors WHERE run_id IN ({marks})", chunk)
            return gone

        return await self.store.call(op)

    async def take_slot(self, scope: str, *, limit: int, window: float) -> bool:
        now = time.time()
        window = min(window, MAX_WINDOW)

        def op(conn: sqlite3.Connection) -> bool:
            conn.execute("DELETE FROM rate_slots WHERE (scope = ? AND at < ?) OR at < ?",
                         (scope, now - window, now - MAX_WINDOW))
            (used,) = conn.execute("SELECT COUNT(*) FROM rate_slots WHERE scope = ? AND at >= ?",
                                   (scope, now - window)).fetchone()
            if used >= limit:
                return False
            conn.execute("INSERT INTO rate_slots VALUES (?, ?)", (scope, now))
            return True

        return await self.store.call(op)
