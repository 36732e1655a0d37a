"""Both queue backends behind one fixture: the contract tests run once against SQLite and once
against a real PostgreSQL server (tests/pg_server.py), with the same assertions.

`rows` and `execute` reach under the interface (a test that fakes a stalled worker, or checks
what is stored) in either backend's SQL; `IntegrityErrors` is what either raises for a broken
constraint.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bot.queue.pg_store import PostgresQueueStore
from bot.queue.sqlite_store import SqliteQueueStore

BACKENDS = ["sqlite", "postgres"]
AnyStore = SqliteQueueStore | PostgresQueueStore
IntegrityErrors = (sqlite3.IntegrityError, psycopg.IntegrityError)


def open_store(request: pytest.FixtureRequest, data_dir: Path, **options: Any) -> AnyStore:
    """The backend of ``request.param``; PostgreSQL gets a fresh database of the test's own."""
    if request.param == "postgres":
        return PostgresQueueStore.open(request.getfixturevalue("pg_url"), **options)
    return SqliteQueueStore.open(data_dir, **options)


def rows(store: AnyStore, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """What ``sql`` (with ``?`` placeholders) selects, read straight from the database."""
    if isinstance(store, SqliteQueueStore):
        return store.call_sync(lambda conn: conn.execute(sql, params).fetchall())
    with psycopg.connect(store.url) as conn:
        return [tuple(row) for row in conn.execute(sql.replace("?", "%s"), params).fetchall()]


def execute(store: AnyStore, sql: str, params: tuple[Any, ...] = ()) -> None:
    """Run ``sql`` (with ``?`` placeholders) straight on the database, committed."""
    if isinstance(store, SqliteQueueStore):
        store.call_sync(lambda conn: conn.execute(sql, params))
        return
    with psycopg.connect(store.url) as conn:
        conn.execute(sql.replace("?", "%s"), params)
