"""The one place that picks the queue's backend from the settings: PostgreSQL when
``GWI_DATABASE_URL`` is set, else SQLite in the data folder. Nothing else knows which it is."""

from __future__ import annotations

import time

from bot.queue.interface import Clock, QueueStore
from bot.queue.records import DEFAULT_RETRY, JobRetry
from bot.settings import Settings


def open_queue(settings: Settings, *, clock: Clock = time.time,
               delivery_retry: JobRetry = DEFAULT_RETRY,
               job_retry: JobRetry = DEFAULT_RETRY) -> QueueStore:
    """Open the queue the settings name, its schema up to date. Raises StoreError."""
    url = settings.server.database_url
    if url is not None:
        from bot.queue.pg_store import PostgresQueueStore

        return PostgresQueueStore.open(url.get_secret_value(), clock=clock,
                                       delivery_retry=delivery_retry, job_retry=job_retry)
    from bot.queue.sqlite_store import SqliteQueueStore

    return SqliteQueueStore.open(settings.data_dir, clock=clock,
                                 delivery_retry=delivery_retry, job_retry=job_retry)
