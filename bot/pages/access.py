"""Who may read which run: the signed-in person must be able to read the run's repository.

GitHub is asked with the person's own token (`can_read_repository`), and the answer is kept per
(user, repository) for ``GWI_ACCESS_CACHE_SECONDS`` (120 s by default, 0: ask every time), so a
person whose access is removed is refused within that time, and a page's many requests do not
each cost an API call. Only definite answers are kept: an error from GitHub is asked again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import aiohttp

from bot.pages.github_user import can_read_repository
from bot.settings import PagesSettings

#: Entries kept at most; the oldest go first (each is a user and a repository).
MAX_ENTRIES = 10_000


class AccessCache:
    """Remembers, for a short time, whether a user can read a repository."""

    def __init__(self, pages: PagesSettings, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._pages = pages
        self._ttl = pages.access_cache_seconds
        self._clock = clock
        self._answers: dict[tuple[int, str], tuple[bool, float]] = {}

    async def can_read(self, http: aiohttp.ClientSession, *, user_id: int, token: str,
                       full_name: str) -> bool:
        """True when the user can read ``full_name``; raises what `can_read_repository` raises
        (a rejected token, GitHub unavailable), which is never remembered."""
        key = (user_id, full_name.lower())
        now = self._clock()
        known = self._answers.get(key)
        if known is not None and now < known[1]:
            return known[0]
        allowed = await can_read_repository(http, self._pages, token, full_name)
        if self._ttl > 0:
            self._answers.pop(key, None)
            while len(self._answers) >= MAX_ENTRIES:
                self._answers.pop(next(iter(self._answers)))
            self._answers[key] = (allowed, self._clock() + self._ttl)
        return allowed

    def forget_user(self, user_id: int) -> None:
        """Drop what is known about one user (they signed out, or their token was refused)."""
        for key in [k for k in self._answers if k[0] == user_id]:
            del self._answers[key]
