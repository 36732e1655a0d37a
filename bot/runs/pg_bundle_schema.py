"""The PostgreSQL run store's schema as versioned migrations, applied safely by any number of
processes starting at once.

Each migration runs in its own transaction under one advisory lock (``pg_advisory_xact_lock``,
another key than the queue's) and is recorded in ``run_store_migrations`` in that same
transaction: two processes take turns, and the second finds the work done. The run store keeps
its own version table, so it can share a database with the queue (the usual deployment) or use
one of its own.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import psycopg

from bot.errors import GwiError

#: The advisory lock every migration of the run store takes ("gwib" in ASCII).
MIGRATION_LOCK = 0x67776962


class Migration(NamedTuple):
    version: int
    name: str
    statements: tuple[str, ...]


_BUNDLES = (
    # One row per audit line, its bytes exactly as hashed (the canonical JSON and its newline):
    # `gwi runs export` writes them back one after another, byte for byte. action and hash
    # repeat what the line holds, for queries (a run's head, which runs are signed).
    """CREATE TABLE run_audit (
        run_id          TEXT NOT NULL,
        seq             INTEGER NOT NULL CHECK (seq >= 0),
        action          TEXT NOT NULL,
        hash            TEXT NOT NULL,
        line            BYTEA NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    # A run exists once its first line does: listing runs reads this index only.
    "CREATE INDEX run_audit_created ON run_audit (run_id) WHERE seq = 0",
    # Each artifact's current bytes; written_seq is the audit line that recorded them, stored in
    # the same transaction.
    """CREATE TABLE run_artifacts (
        run_id          TEXT NOT NULL,
        name            TEXT NOT NULL,
        sha256          TEXT NOT NULL,
        body            BYTEA NOT NULL,
        written_seq     INTEGER NOT NULL,
        PRIMARY KEY (run_id, name),
        FOREIGN KEY (run_id, written_seq) REFERENCES run_audit (run_id, seq)
    )""",
    # Every Ed25519 signature a log holds (each seal of run.json, the final signature), as its
    # lines hold them: which key signed what, without parsing lines.
    """CREATE TABLE run_signatures (
        run_id          TEXT NOT NULL,
        seq             INTEGER NOT NULL,
        kind            TEXT NOT NULL CHECK (kind IN ('seal', 'final')),
        public_key      TEXT NOT NULL,
        signature       TEXT NOT NULL,
        PRIMARY KEY (run_id, seq),
        FOREIGN KEY (run_id, seq) REFERENCES run_audit (run_id, seq)
    )""",
    "CREATE INDEX run_signatures_by_key ON run_signatures (public_key)",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "run bundles: audit lines, artifacts, signatures", _BUNDLES),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


def migrate(conn: psycopg.Connection[tuple[Any, ...]]) -> list[int]:
    """Bring the run store's tables to :data:`SCHEMA_VERSION`; the versions this call applied.

    ``conn`` must be in autocommit mode: each migration is its own transaction. Raises
    `GwiError` when the database is newer than this gwi.
    """
    applied: list[int] = []
    for migration in MIGRATIONS:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            conn.execute(
                "CREATE TABLE IF NOT EXISTS run_store_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            row = conn.execute(
                "SELECT COALESCE(MAX(version), 0) FROM run_store_migrations").fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise GwiError(f"the run store's tables have schema version {current};"
                               f" this gwi knows {SCHEMA_VERSION}")
            if current >= migration.version:
                continue
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute("INSERT INTO run_store_migrations (version, name) VALUES (%s, %s)",
                         (migration.version, migration.name))
            applied.append(migration.version)
    return applied
