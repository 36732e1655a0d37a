"""One GitHub API request, made patiently: retries, backoff, rate-limit waits, token renewal."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import aiohttp
import gidgethub
import gidgethub.aiohttp
from gidgethub import sansio

from bot.github.failures import GitHubError

log = logging.getLogger(__name__)

T = TypeVar("T")

CredentialKind = Literal["jwt", "token"]
# (jwt, installation token): exactly one is set, as gidgethub's request methods expect.
_Auth = tuple[str | None, str | None]

# GitHub asks integrators to wait at least a minute after a secondary rate limit that
# names no Retry-After ("wait at least one minute before retrying").
SECONDARY_RATE_LIMIT_DEFAULT_WAIT = 60.0


class Credentials(Protocol):
    """Where a request's credential comes from: the App JWT or an installation token."""

    @property
    def renewable(self) -> bool:
        """Whether a 401 is worth one retry with a freshly minted credential."""
        ...

    async def get(self, *, refused: str | None = None) -> tuple[CredentialKind, str]:
        """Return the credential; ``refused`` is one GitHub answered 401 to (do not reuse)."""
        ...


@dataclass(frozen=True, slots=True)
class HttpRetry:
    """Bounds on patience. Every wait is capped, and so is the whole call.

    ``max_attempts`` counts every try of one call; ``max_elapsed`` (seconds) bounds the
    call including its waits; ``max_rate_limit_wait`` is the longest single wait gwi accepts
    from a rate limit before it gives up and reports instead.
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 20.0
    max_elapsed: float = 120.0
    max_rate_limit_wait: float = 90.0
    request_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do about one failed attempt: wait ``delay`` seconds and retry, or stop."""

    retry: bool
    delay: float
    reason: str


def backoff_delay(attempt: int, policy: HttpRetry, rand: float) -> float:
    """Exponential backoff with jitter: between half and all of ``base * 2**(attempt-1)``.

    Half-to-full jitter keeps retries from many workers apart while guaranteeing a minimum
    pause; ``rand`` is a number in [0, 1).
    """
    growth: float = 2.0 ** max(0, attempt - 1)
    ceiling = min(policy.max_delay, policy.base_delay * growth)
    return ceiling * (0.5 + rand / 2)


def rate_limit_wait(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds GitHub asks us to wait, from ``Retry-After`` or ``x-ratelimit-reset``.

    None when the response carries neither signal. ``now`` is the Unix time.
    """
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(0.0, float(retry_after.strip()))
        except ValueError:
            pass  # an HTTP date: fall through to the reset header, else the default
    if headers.get("x-ratelimit-remaining") == "0" and "x-ratelimit-reset" in headers:
        try:
            # +1: the reset epoch is whole seconds, and arriving early costs another 403.
            return max(0.0, float(headers["x-ratelimit-reset"]) - now + 1.0)
        except ValueError:
            return None
    return None


def _is_rate_limited(exc: gidgethub.HTTPException) -> bool:
    if exc.status_code == 429 or isinstance(exc, gidgethub.RateLimitExceeded):
        return True
    if exc.status_code != 403:
        return False
    # A 403 is a rate limit only when GitHub says so; otherwise it is a permission refusal.
    headers = exc.headers
    return (
        "retry-after" in headers
        or headers.get("x-ratelimit-remaining") == "0"
        or "rate limit" in str(exc).lower()
    )


def decide(
    exc: BaseException,
    *,
    attempt: int,
    elapsed: float,
    policy: HttpRetry,
    now: float,
    rand: float,
) -> Decision:
    """Decide about a failed attempt; pure, so the whole policy is testable without a network.

    Retried: 5xx, timeouts and connection failures (backoff), 403 secondary rate limits and
    429 (the wait GitHub names). Never retried: other 4xx, which a retry cannot change.
    """
    if isinstance(exc, gidgethub.HTTPException) and _is_rate_limited(exc):
        wait = rate_limit_wait(exc.headers, now)
        if wait is None:
            wait = SECONDARY_RATE_LIMIT_DEFAULT_WAIT
        reason = f"rate limited ({int(exc.status_code)}): {exc}"
        if wait > policy.max_rate_limit_wait:
            return Decision(
                False,
                wait,
                f"{reason}; GitHub asks to wait {wait:.0f} s, longer than the "
                f"{policy.max_rate_limit_wait:.0f} s gwi waits",
            )
        delay = wait
    elif isinstance(exc, gidgethub.GitHubBroken):
        reason = f"GitHub answered {int(exc.status_code)} {exc}"
        delay = backoff_delay(attempt, policy, rand)
    elif isinstance(exc, gidgethub.HTTPException):
        return Decision(False, 0.0, str(exc) or exc.status_code.phrase)
    elif isinstance(exc, TimeoutError):
        reason = f"no answer within {policy.request_timeout:g} s"
        delay = backoff_delay(attempt, policy, rand)
    elif isinstance(exc, aiohttp.ClientError):
        reason = f"connection failed: {exc.__class__.__name__}: {exc}"
        delay = backoff_delay(attempt, policy, rand)
    else:
        return Decision(False, 0.0, f"{exc.__class__.__name__}: {exc}")
    if attempt >= policy.max_attempts:
        return Decision(False, delay, f"{reason}; gave up after {attempt} attempts")
    if elapsed + delay > policy.max_elapsed:
        return Decision(
            False,
            delay,
            f"{reason}; gave up after {elapsed:.1f} s (limit {policy.max_elapsed:g} s)",
        )
    return Decision(True, delay, reason)


class GitHubTransport:
    """Sends requests through ``gidgethub.aiohttp.GitHubAPI`` and retries what deserves it.

    ``sleep``, ``clock`` (monotonic), ``wall_clock`` (Unix time) and ``rand`` are injectable
    so tests run the real policy with tiny or recorded waits.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        base_url: str,
        user_agent: str,
        policy: HttpRetry | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rand: Callable[[], float] = random.random,
        observer: CallObserver | None = None,
    ) -> None:
        self.gh = gidgethub.aiohttp.GitHubAPI(session, user_agent, base_url=base_url)
        self._observer = observer
        self.policy = policy or HttpRetry()
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rand = rand

    async def request(
        self,
        method: str,
        url: str,
        url_vars: Mapping[str, str | int] | None = None,
        *,
        credentials: Credentials,
        data: Any = b"",
        accept: str = sansio.accept_format(),
        replay_safe: bool = True,
    ) -> Any:
        """One call; returns the decoded JSON (None for an empty body).

        ``replay_safe=False`` marks a request that must not be sent twice (one that creates a
        comment or a check-run): when it was sent but no answer came (a timeout, a dropped
        connection), GitHub may have acted on it, so it fails at once instead of being sent
        again; the caller's own retry looks before it creates.
        """
        gh = self.gh

        async def attempt(auth: _Auth) -> Any:
            jwt, token = auth
            if method == "GET":
                return await gh.getitem(url, url_vars, accept=accept, jwt=jwt, oauth_token=token)
            if method == "POST":
                return await gh.post(
                    url, url_vars, data=data, accept=accept, jwt=jwt, oauth_token=token
                )
            if method == "PATCH":
                return await gh.patch(
                    url, url_vars, data=data, accept=accept, jwt=jwt, oauth_token=token
                )
            if method == "PUT":
                return await gh.put(
                    url, url_vars, data=data, accept=accept, jwt=jwt, oauth_token=token
                )
            if method == "DELETE":
                return await gh.delete(
                    url, url_vars, data=data, accept=accept, jwt=jwt, oauth_token=token
                )
            raise ValueError(f"unsupported method {method}")

        return await self._retrying(method, url, url_vars, credentials, attempt, replay_safe)

    async def collect(
        self,
        url: str,
        url_vars: Mapping[str, str | int] | None = None,
        *,
        credentials: Credentials,
        iterable_key: str = "items",
        limit: int | None = None,
        until: Callable[[Any], bool] | None = None,
    ) -> list[Any]:
        """Every item of a paginated list (following GitHub's Link header), up to ``limit``
        items, or up to the first item for which ``until`` is true (which is left out).

        The whole walk is the unit of retry: lists gwi reads are short, and restarting is
        simpler and safer than resuming from a page whose neighbours may have shifted.
        """
        gh = self.gh

        async def attempt(auth: _Auth) -> list[Any]:
            jwt, token = auth
            items: list[Any] = []
            pages = gh.getiter(url, url_vars, iterable_key=iterable_key, jwt=jwt, oauth_token=token)
            async for item in pages:
                if until is not None and until(item):
                    break
                items.append(item)
                if limit is not None and len(items) >= limit:
                    break
            return items

        return await self._retrying("GET", url, url_vars, credentials, attempt)

    async def _retrying(
        self,
        method: str,
        url: str,
        url_vars: Mapping[str, str | int] | None,
        credentials: Credentials,
        attempt_once: Callable[[_Auth], Awaitable[T]],
        replay_safe: bool = True,
    ) -> T:
        path = _display_path(url, url_vars)
        started = self._clock()
        attempt = 0
        renewed = False
        refused: str | None = None
        while True:
            attempt += 1
            kind, secret = await credentials.get(refused=refused)
            refused = None
            auth: _Auth = (secret, None) if kind == "jwt" else (None, secret)
            try:
                async with asyncio.timeout(self.policy.request_timeout):
                    result = await attempt_once(auth)
                self._observe(method, "ok")
                return result
            except gidgethub.HTTPException as exc:
                if exc.status_code == 401:
                    # An installation token can die before its expires_at (revoked, App
                    # reinstalled); one fresh token is worth a try, a second 401 is not.
                    if credentials.renewable and not renewed:
                        renewed, refused = True, secret
                        self._observe_retry("401")
                        log.warning("github %s %s: 401, minting a new token", method, path)
                        continue
                    self._observe(method, "401")
                    raise GitHubError(
                        f"GitHub refused the credentials: {exc}",
                        method=method,
                        path=path,
                        status=401,
                        attempts=attempt,
                    ) from None
                failure: BaseException = exc
                status: int | None = int(exc.status_code)
                if not replay_safe and status is not None and status >= 500:
                    # A server error can come after GitHub acted (a proxy's 502 after the
                    # comment was made): sending it again could act twice. The caller looks
                    # for what the first try made before it creates anything again.
                    self._observe(method, str(status))
                    raise GitHubError(
                        f"GitHub answered {status}; not sent again, since it may have acted",
                        method=method, path=path, status=status, attempts=attempt,
                    ) from None
            except (TimeoutError, aiohttp.ClientError) as exc:
                failure, status = exc, None
                if not replay_safe and not isinstance(exc, aiohttp.ClientConnectorError):
                    self._observe(method, "no_answer")
                    what = (f"no answer within {self.policy.request_timeout:g} s"
                            if isinstance(exc, TimeoutError)
                            else f"connection failed: {exc.__class__.__name__}: {exc}")
                    raise GitHubError(
                        f"{what}; not sent again, since GitHub may have acted on it",
                        method=method, path=path, status=None, attempts=attempt,
                    ) from None
            decision = decide(
                failure,
                attempt=attempt,
                elapsed=self._clock() - started,
                policy=self.policy,
                now=self._wall_clock(),
                rand=self._rand(),
            )
            if not decision.retry:
                self._observe(method, str(status) if status is not None else "no_answer")
                raise GitHubError(
                    decision.reason, method=method, path=path, status=status, attempts=attempt
                ) from None
            log.warning(
                "github %s %s: %s; retrying in %.2f s (attempt %d)",
                method,
                path,
                decision.reason,
                decision.delay,
                attempt,
            )
            self._observe_retry(str(status) if status is not None else "no_answer")
            await self._sleep(decision.delay)

    def _observe(self, method: str, status: str) -> None:
        if self._observer is not None:
            self._observer.github_call(method, status)

    def _observe_retry(self, status: str) -> None:
        if self._observer is not None:
            self._observer.github_retry(status)


class CallObserver(Protocol):
    """Told of every call's final status ("ok", an HTTP status, "no_answer") and each retry."""

    def github_call(self, method: str, status: str) -> None: ...

    def github_retry(self, status: str) -> None: ...


def _display_path(url: str, url_vars: Mapping[str, str | int] | None) -> str:
    """The request's path for messages: expanded, without host (and never a credential)."""
    expanded = sansio.format_url(url, url_vars or {}, base_url="https://host")
    return expanded.removeprefix("https://host")
