"""Retries, backoff and rate limits: the pure policy, then the real thing against the fake."""

from __future__ import annotations

import http

import aiohttp
import gidgethub
import pytest

from bot.github.client import GitHubApp
from bot.github.failures import GitHubError
from bot.github.transport import HttpRetry, backoff_delay, decide, rate_limit_wait
from tests.conftest import GITHUB_INSTALLATION_ID, GITHUB_REPO

POLICY = HttpRetry(max_attempts=4, base_delay=1.0, max_delay=8.0, max_elapsed=60.0)


def _decide(exc: BaseException, attempt: int = 1, elapsed: float = 0.0):
    return decide(exc, attempt=attempt, elapsed=elapsed, policy=POLICY, now=1000.0, rand=0.5)


def test_backoff_grows_exponentially_with_bounded_jitter() -> None:
    assert [backoff_delay(n, POLICY, 0.0) for n in (1, 2, 3, 4, 5, 6)] == [
        0.5,
        1.0,
        2.0,
        4.0,
        4.0,
        4.0,
    ]
    assert backoff_delay(3, POLICY, 0.999999) == pytest.approx(4.0)


def test_rate_limit_wait_reads_retry_after_then_reset() -> None:
    assert rate_limit_wait({"retry-after": "7"}, now=0) == 7
    reset = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030"}
    assert rate_limit_wait(reset, now=1000) == 31
    assert (
        rate_limit_wait({"x-ratelimit-remaining": "12", "x-ratelimit-reset": "1030"}, 1000) is None
    )


def test_policy_retries_server_errors_and_network_failures_only() -> None:
    broken = gidgethub.GitHubBroken(http.HTTPStatus(502))
    assert _decide(broken).retry and _decide(broken).delay == 0.75
    assert _decide(TimeoutError()).retry
    assert _decide(aiohttp.ClientConnectionError("reset")).retry
    assert not _decide(gidgethub.BadRequest(http.HTTPStatus(404), "Not Found")).retry
    refused = gidgethub.BadRequest(http.HTTPStatus(403), "Resource not accessible by integration")
    assert not _decide(refused).retry
    assert not _decide(ValueError("a bug")).retry


def test_policy_is_bounded_in_attempts_and_time() -> None:
    broken = gidgethub.GitHubBroken(http.HTTPStatus(500))
    assert not _decide(broken, attempt=4).retry
    assert "gave up after 4 attempts" in _decide(broken, attempt=4).reason
    late = _decide(broken, attempt=2, elapsed=59.5)
    assert not late.retry and "gave up after 59.5 s" in late.reason


def test_policy_honours_rate_limits_within_the_allowed_wait() -> None:
    secondary = gidgethub.BadRequest(
        http.HTTPStatus(403),
        "You have exceeded a secondary rate limit",
        headers={"retry-after": "3"},
    )
    assert (_decide(secondary).retry, _decide(secondary).delay) == (True, 3.0)
    unnamed = gidgethub.BadRequest(http.HTTPStatus(403), "You have exceeded a secondary rate limit")
    assert _decide(unnamed).delay == 60.0  # GitHub: wait at least a minute
    too_long = gidgethub.BadRequest(http.HTTPStatus(429), headers={"retry-after": "3600"})
    decision = _decide(too_long)
    assert not decision.retry and "longer than the 90 s" in decision.reason


# -- against the fake ----------------------------------------------------------------------


async def test_500_then_success(fake_github, github_app, github_sleeps) -> None:
    fake_github.add_pull(GITHUB_REPO, number=5)
    fake_github.fault("pulls/get", status=500)
    pull = await github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO).get_pull_request(5)
    assert pull.number == 5
    assert [c.status for c in fake_github.calls_to("pulls/get")] == [500, 200]
    assert len(github_sleeps) == 1 and 0.25 <= github_sleeps[0] <= 0.5


async def test_502_every_time_gives_up_with_a_readable_error(
    fake_github, github_app, github_sleeps
) -> None:
    fake_github.fault("repos/get", status=502, times=10)
    repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    with pytest.raises(GitHubError) as info:
        await repo.get_repo()
    error = info.value
    assert error.status == 502 and error.attempts == 4
    assert str(error) == (
        f"GitHub GET /repos/{GITHUB_REPO} failed after 4 attempts (502): "
        "GitHub answered 502 Bad Gateway; gave up after 4 attempts"
    )
    assert len(fake_github.calls_to("repos/get")) == 4
    assert len(github_sleeps) == 3
    assert github_sleeps == sorted(github_sleeps)  # backing off, not hammering


async def test_a_create_answered_5xx_is_not_sent_again_by_the_transport(
    fake_github, github_app, github_sleeps
) -> None:
    # GitHub may have made the check-run before a proxy answered 502: the caller looks first
    fake_github.fault("checks/create", status=502, times=10)
    repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    with pytest.raises(GitHubError, match="not sent again, since it may have acted") as info:
        await repo.create_check_run("gwi", "d" * 40)
    assert info.value.status == 502 and info.value.attempts == 1
    assert len(fake_github.calls_to("checks/create")) == 1 and github_sleeps == []


async def test_secondary_rate_limit_waits_what_github_asks(
    fake_github, github_app, github_sleeps
) -> None:
    fake_github.add_pull(GITHUB_REPO, number=1)
    fake_github.fault("issues/create-comment", status=403, retry_after=7)
    comment = await github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO).create_comment(1, "hi")
    assert comment.body == "hi"
    assert github_sleeps == [7.0]
    assert len(fake_github.comments_on(GITHUB_REPO, 1)) == 1


async def test_rate_limit_longer_than_allowed_is_reported_not_waited(
    fake_github, github_app, github_sleeps
) -> None:
    fake_github.add_pull(GITHUB_REPO, number=1)
    fake_github.fault("pulls/get", status=403, retry_after=600)
    with pytest.raises(GitHubError, match="asks to wait 600 s, longer than the 30 s") as info:
        await github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO).get_pull_request(1)
    assert info.value.status == 403
    assert github_sleeps == []


async def test_429_and_exhausted_primary_limit_are_waited_out(
    fake_github, github_app, github_sleeps
) -> None:
    fake_github.add_pull(GITHUB_REPO, number=1)
    fake_github.fault("pulls/get", status=429, retry_after=2)
    fake_github.fault("pulls/get", status=403, reset_in=5)
    await github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO).get_pull_request(1)
    assert github_sleeps[0] == 2.0
    assert 4.0 <= github_sleeps[1] <= 7.0  # until x-ratelimit-reset, plus a second


async def test_a_permission_403_is_not_retried(fake_github, github_app, github_sleeps) -> None:
    fake_github.add_pull(GITHUB_REPO, number=1)
    fake_github.fault("pulls/update", status=403, message="Resource not accessible by integration")
    repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    with pytest.raises(GitHubError, match="Resource not accessible"):
        await repo._call("PATCH", "/pulls/1", {"title": "x"})
    assert github_sleeps == []


async def test_timeouts_are_retried_then_reported(fake_github, github_settings) -> None:
    fake_github.add_pull(GITHUB_REPO, number=1)
    fake_github.fault("pulls/get", delay=5)
    fake_github.fault("pulls/get", delay=5)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    policy = HttpRetry(max_attempts=3, base_delay=0.01, request_timeout=0.1)
    async with aiohttp.ClientSession() as session:
        app = GitHubApp(github_settings, session, policy=policy, sleep=sleep)
        repo = app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
        assert (await repo.get_pull_request(1)).number == 1  # third attempt is on time
        fake_github.fault("pulls/get", delay=5, times=3)
        with pytest.raises(GitHubError, match=r"no answer within 0.1 s; gave up after 3") as info:
            await repo.get_pull_request(1)
    assert info.value.status is None
    assert len(waits) == 4


async def test_total_time_is_bounded(fake_github, github_settings) -> None:
    fake_github.fault("pulls/get", status=503, times=10)
    fake_github.add_pull(GITHUB_REPO, number=1)
    now = [0.0]

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    policy = HttpRetry(max_attempts=50, base_delay=2.0, max_delay=2.0, max_elapsed=5.0)
    async with aiohttp.ClientSession() as session:
        app = GitHubApp(github_settings, session, policy=policy, sleep=sleep, clock=lambda: now[0])
        with pytest.raises(GitHubError, match=r"limit 5 s"):
            await app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO).get_pull_request(1)
    assert now[0] <= 5.0
