"""The SQLite queue's schema, its version, and how a connection to it is prepared."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from bot.queue.records import StoreError

DB_FILENAME = "queue.sqlite3"
SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
# The WAL file is cut back to this size when the log restarts (see bot.queue.writer).
WAL_SIZE_LIMIT = 16 * 1024 * 1024

SCHEMA = """
CREATE TABLE deliveries (
    seq             INTEGER PRIMARY KEY,
    delivery_id     TEXT NOT NULL UNIQUE,
    event           TEXT NOT NULL,
    action          TEXT,
    installation_id INTEGER,
    repository      TEXT,
    received_at     REAL NOT NULL,
    status          TEXT NOT NULL
        CHECK (status IN ('pending', 'processing', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    not_before      REAL NOT NULL,
    lease_owner     TEXT,
    lease_expires   REAL,
    handlers_done   TEXT NOT NULL DEFAULT '[]',
    last_error      TEXT,
    finished_at     REAL
);
-- Claims take the oldest ready row of a status: this order lets them stop at the first
-- one instead of sorting the whole backlog.
CREATE INDEX deliveries_by_status ON deliveries (status, seq);

-- The raw body, exactly as signed, apart from the small rows that change state: updating
-- a status then never rewrites a payload of up to 25 MiB.
CREATE TABLE delivery_bodies (
    delivery_id     TEXT PRIMARY KEY REFERENCES deliveries (delivery_id),
    encoding        TEXT NOT NULL CHECK (encoding IN ('identity', 'zlib')),
    body            BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE jobs (
    id              INTEGER PRIMARY KEY,
    kind            TEXT NOT NULL,
    key             TEXT,
    idempotency_key TEXT UNIQUE,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL
        CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    max_attempts    INTEGER NOT NULL,
    not_before      REAL NOT NULL,
    lease_owner     TEXT,
    lease_expires   REAL,
    last_error      TEXT,
    origin          TEXT,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL,
    finished_at     REAL
);
CREATE INDEX jobs_by_status ON jobs (status, id);
CREATE INDEX jobs_by_key ON jobs (key, status, id) WHERE key IS NOT NULL;
-- The promise "at most one running job per key" is kept by the database itself.
CREATE UNIQUE INDEX jobs_one_running_per_key ON jobs (key)
    WHERE status = 'running' AND key IS NOT NULL;
"""

DELIVERY_COLUMNS = (
    "seq, delivery_id, event, action, installation_id, repository, received_at, status,"
    " attempts, lease_owner, lease_expires, handlers_done, last_error"
)
JOB_COLUMNS = (
    "id, kind, key, idempotency_key, payload, status, attempts, max_attempts, not_before,"
    " lease_owner, lease_expires, last_error, origin, created_at"
)


def prepare(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"the queue database cannot use write-ahead logging (mode {mode})")
    # FULL: a commit is fsynced before it returns, so an acknowledged delivery survives a
    # power cut, not just a crash of this process.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # the writer does it, off the commit path
    conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the queue database has schema version {version}; this gwi knows {SCHEMA_VERSION}"
        )
    if version == 0:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have created the schema while this one waited for the lock.
            if int(conn.execute("PRAGMA user_version").fetchone()[0]) == 0:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def fsync_dir(path: Path) -> None:
    """Make the new database file's directory entry durable too."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def connect(data_dir: Path) -> tuple[Path, sqlite3.Connection]:
    """Open (creating if needed) ``<data_dir>/queue.sqlite3``, prepared and at this version."""
    path = data_dir / DB_FILENAME
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the queue database {path}: {exc}") from exc
    try:
        prepare(conn)
        if created:
            fsync_dir(data_dir)
    except (OSError, sqlite3.Error, StoreError) as exc:
        conn.close()
        if isinstance(exc, StoreError):
            raise
        raise StoreError(f"cannot use the queue database {path}: {exc}") from exc
    return path, conn
