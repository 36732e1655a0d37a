"""The PostgreSQL queue's schema as versioned migrations, applied safely by any number of processes.

Each migration runs in its own transaction under one advisory lock
(``pg_advisory_xact_lock``) and is recorded in ``schema_migrations`` in that same transaction: two
processes starting at once take turns, and the second finds the work done. The tables mirror the
SQLite schema (bot/queue/schema.py, bot/queue/pr_index.py, bot/queue/redelivery.py) so both
backends keep the same promises; times are seconds since the epoch from the store's clock.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import psycopg

from bot.queue.records import StoreError

#: The advisory lock every migration takes (any constant no other code uses: "gwi" in ASCII).
MIGRATION_LOCK = 0x677769


class Migration(NamedTuple):
    version: int
    name: str
    statements: tuple[str, ...]


_QUEUE = (
    """CREATE TABLE deliveries (
        seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        delivery_id     TEXT NOT NULL UNIQUE,
        event           TEXT NOT NULL,
        action          TEXT,
        installation_id BIGINT,
        repository      TEXT,
        received_at     DOUBLE PRECISION NOT NULL,
        status          TEXT NOT NULL
            CHECK (status IN ('pending', 'processing', 'done', 'failed')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        not_before      DOUBLE PRECISION NOT NULL,
        lease_owner     TEXT,
        lease_expires   DOUBLE PRECISION,
        handlers_done   TEXT NOT NULL DEFAULT '[]',
        last_error      TEXT,
        finished_at     DOUBLE PRECISION
    )""",
    "CREATE INDEX deliveries_by_status ON deliveries (status, seq)",
    # The raw body apart from the small rows that change state, as in SQLite.
    """CREATE TABLE delivery_bodies (
        delivery_id     TEXT PRIMARY KEY REFERENCES deliveries (delivery_id) ON DELETE CASCADE,
        encoding        TEXT NOT NULL CHECK (encoding IN ('identity', 'zlib')),
        body            BYTEA NOT NULL
    )""",
    """CREATE TABLE jobs (
        id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        kind            TEXT NOT NULL,
        key             TEXT,
        idempotency_key TEXT UNIQUE,
        payload         TEXT NOT NULL,
        status          TEXT NOT NULL
            CHECK (status IN ('pending', 'running', 'done', 'failed', 'cancelled')),
        attempts        INTEGER NOT NULL DEFAULT 0,
        max_attempts    INTEGER NOT NULL,
        not_before      DOUBLE PRECISION NOT NULL,
        lease_owner     TEXT,
        lease_expires   DOUBLE PRECISION,
        last_error      TEXT,
        origin          TEXT,
        created_at      DOUBLE PRECISION NOT NULL,
        updated_at      DOUBLE PRECISION NOT NULL,
        finished_at     DOUBLE PRECISION
    )""",
    "CREATE INDEX jobs_by_status ON jobs (status, id)",
    "CREATE INDEX jobs_by_key ON jobs (key, status, id) WHERE key IS NOT NULL",
    # At most one running job per key, kept by the database itself: two workers on two hosts
    # that both think a key is free cannot both start it.
    """CREATE UNIQUE INDEX jobs_one_running_per_key ON jobs (key)
        WHERE status = 'running' AND key IS NOT NULL""",
    # The PR index, its anchors and budgets (bot/queue/pg_index.py).
    """CREATE TABLE pr_runs (
        run_id          TEXT PRIMARY KEY,
        repository      TEXT NOT NULL,
        pr              INTEGER NOT NULL,
        head_sha        TEXT NOT NULL,
        base_sha        TEXT NOT NULL,
        check_run_id    BIGINT,
        created_at      DOUBLE PRECISION NOT NULL,
        finished        INTEGER NOT NULL DEFAULT 0,
        published_state TEXT,
        ord             BIGINT GENERATED ALWAYS AS IDENTITY
    )""",
    "CREATE INDEX pr_runs_by_pr ON pr_runs (repository, pr, created_at, ord)",
    "CREATE INDEX pr_runs_unfinished ON pr_runs (created_at, ord) WHERE finished = 0",
    """CREATE TABLE rate_slots (
        scope           TEXT NOT NULL,
        at              DOUBLE PRECISION NOT NULL
    )""",
    "CREATE INDEX rate_slots_by_scope ON rate_slots (scope, at)",
    "CREATE INDEX rate_slots_by_time ON rate_slots (at)",
    """CREATE TABLE run_anchors (
        run_id          TEXT NOT NULL,
        seq             INTEGER NOT NULL,
        hash            TEXT NOT NULL,
        at              DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (run_id, seq)
    )""",
    # Downtime recovery's memory (bot/queue/pg_index.py).
    """CREATE TABLE webhook_redeliveries (
        guid            TEXT PRIMARY KEY,
        github_id       BIGINT NOT NULL,
        requested_at    DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE webhook_marker (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        seen_until      DOUBLE PRECISION NOT NULL
    )""",
)

_SIGNING_KEY = (
    # The public key every process of one deployment signs with: the first to start records
    # it, and a process holding another key refuses to start (bundles would not verify).
    """CREATE TABLE signing_key (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        public_key      TEXT NOT NULL,
        recorded_at     DOUBLE PRECISION NOT NULL
    )""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "queue, PR index, redelivery ledger", _QUEUE),
    Migration(2, "the deployment's signing key", _SIGNING_KEY),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


async def migrate(conn: psycopg.AsyncConnection[tuple[Any, ...]]) -> list[int]:
    """Bring the database to :data:`SCHEMA_VERSION`; the versions this call applied.

    ``conn`` must be in autocommit mode: each migration is its own transaction. Raises
    :class:`StoreError` when the database is newer than this gwi.
    """
    applied: list[int] = []
    for migration in MIGRATIONS:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
            cursor = await conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            row = await cursor.fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise StoreError(f"the queue database has schema version {current};"
                                 f" this gwi knows {SCHEMA_VERSION}")
            if current >= migration.version:
                continue
            for statement in migration.statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                               (migration.version, migration.name))
            applied.append(migration.version)
    return applied
