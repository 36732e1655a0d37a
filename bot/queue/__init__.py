"""Durable webhook deliveries and jobs with leases, the workers that take them, the PR index.

Callers depend on :class:`bot.queue.interface.QueueStore`; `bot.queue.factory.open_queue` picks
the backend (SQLite, or PostgreSQL with GWI_DATABASE_URL).
"""
