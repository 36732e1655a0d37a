"""Delivery workers stepping aside while webhook requests are being answered."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator


class IntakePriority:
    """Lets delivery workers step aside while webhook requests are being answered.

    GitHub waits 10 seconds for an answer and does not redeliver on its own, so during a
    burst acknowledging comes first: a delivery worker about to claim waits until no
    request is in flight, but never longer than ``intake_priority_wait``, so work still
    moves under sustained load. Job workers (long runs, mostly waiting) do not wait.
    """

    def __init__(self) -> None:
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Count a webhook request as in flight for the duration of the block."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def wait(self, limit: float) -> None:
        """Return once no request is in flight, or after ``limit`` seconds."""
        if limit > 0 and not self._idle.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(limit):
                    await self._idle.wait()
