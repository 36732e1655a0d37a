"""Durable webhook deliveries and jobs with leases, the workers that take them, the PR index.

Callers depend on :class:`bot.queue.interface.QueueStore`; `open_queue_store` picks the backend.
"""
