"""GitHub misbehaving under a whole run: 5xx, timeouts, rate limits, a token that expires mid-run.

What it may, gwi retries with bounded, growing waits (the waits GitHub names for rate limits),
and the run completes as if nothing happened; what keeps failing ends the run cleanly with a
reason a person can read, and is shown on GitHub once GitHub answers again. Nothing is half
written: no second check-run or comment, no bundle that does not verify.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.github.transport import HttpRetry
from bot.queue.records import JobRetry
from bot.runs.verify import verify_bundle
from bot.schemas.state import Outcome, RunState
from bot.server.app import STORE

BASE = {"requirements.txt": "requests==2.0.0\nflask==1.0.0\n", "README.md": "hello\n"}
POLICY = HttpRetry(max_attempts=4, base_delay=0.5, max_delay=4.0, max_elapsed=60.0,
                     max_rate_limit_wait=30.0, request_timeout=0.5)


def recorder(sleeps: list[float]) -> Callable[[float], Awaitable[None]]:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        await asyncio.sleep(0)

    return sleep


async def _pr(make_bot: Callable[..., Any], sleeps: list[float], *, resolvable: bool = True,
              **app_options: Any) -> Any:
    """PR #7, whose one conflict the offline resolver settles (or, if not ``resolvable``,
    cannot), on an App whose GitHub client records its waits instead of sleeping."""
    bot = await make_bot(BASE, app_options={
        "github_options": {"policy": POLICY, "sleep": recorder(sleeps)}, **app_options})
    if resolvable:
        head, base = "requests==2.1.0\nflask==1.0.0\n", "requests==2.2.0\nflask==1.0.0\n"
    else:
        head, base = "requests==2.1.0  # ours\nflask==1.0.0\n", "requests>=2\nflask==1.0.0\n"
    bot.remote.commit("feature", {"requirements.txt": head}, "feature", new_branch=True)
    bot.remote.commit("main", {"requirements.txt": base}, "main")
    bot.open_pull(7, "feature")
    bot.fake.set_collaborator(bot.repo, "maya", "maintain")
    return bot


def expire_tokens_at(fake: Any, operation_id: str, nth: int) -> None:
    """Let every installation token run out just after the ``nth`` call of ``operation_id``
    is authenticated: the next request with it gets GitHub's 401."""
    seen = 0
    take = fake._take_fault

    def expiring(operation: str) -> Any:
        nonlocal seen
        if operation == operation_id:
            seen += 1
            if seen == nth:
                for token in fake.tokens:
                    token.expires_at = fake.clock() - timedelta(seconds=1)
        return take(operation)

    fake._take_fault = expiring


def statuses(fake: Any, operation_id: str) -> list[int]:
    return [call.status for call in fake.calls_to(operation_id)]


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_transient_failures_are_retried_within_bounds_and_the_run_pushes(
    make_bot: Callable[..., Any]
) -> None:
    sleeps: list[float] = []
    bot = await _pr(make_bot, sleeps)
    fake = bot.fake
    fake.fault("pulls/get", status=502)
    fake.fault("apps/create-installation-access-token", status=500)
    fake.fault("repos/get-content", status=503)
    fake.fault("checks/create", status=403, retry_after=7)  # a secondary rate limit
    fake.fault("checks/update", status=429, retry_after=2)
    fake.fault("checks/update", delay=2.0)  # no answer within the 0.5 s timeout
    fake.fault("issues/list-comments", status=502)
    fake.fault("issues/create-comment", status=500)
    expire_tokens_at(fake, "checks/update", nth=3)
    assert await bot.deliver("pull_request", bot.pull_payload(7, "opened")) == 202
    [view] = bot.views()
    assert view.ctx.state is RunState.AWAITING_APPROVAL, view.ctx.history[-1].reason

    fake.fault("repos/get-collaborator-permission-level", status=429, retry_after=1)
    fake.fault("issues/get-comment", status=502)
    fake.fault("git/get-ref", status=500)
    head = bot.remote.sha("refs/heads/feature")
    await bot.deliver("issue_comment", bot.comment_payload(7, f"/gwi approve {view.patch_hash}"))
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.APPLIED
    assert bot.remote.sha("refs/heads/feature^1") == head
    assert verify_bundle(bot.runs.run_dir(view.ctx.run_id),
                         trusted_keys={bot.runs.signer.public_key_hex}).ok

    # each fault was retried, once
    assert statuses(fake, "pulls/get")[:2] == [502, 200]
    assert statuses(fake, "apps/create-installation-access-token")[:2] == [500, 201]
    assert statuses(fake, "checks/create") == [403, 201]
    assert statuses(fake, "checks/update")[0] == 429
    assert statuses(fake, "issues/create-comment")[:2] == [500, 201]
    assert fake.auth_failures, "the expired token was never refused"
    assert statuses(fake, "checks/update").count(401) == 1  # then a fresh token was minted
    # the waits: what GitHub named for rate limits, bounded exponential backoff otherwise (the
    # timeout came on the second try of its call: up to twice the first wait)
    assert 7.0 in sleeps and 2.0 in sleeps and 1.0 in sleeps
    backoffs = [s for s in sleeps if s not in (7.0, 2.0, 1.0)]
    # (a create's 500 is not retried by the transport: the client looks, finds nothing, and
    # creates once more, without a backoff)
    assert len(backoffs) == 7 and all(0.25 <= s <= 1.0 for s in backoffs), sleeps
    # nothing doubled
    [check] = bot.check_runs()
    assert check.status == "completed" and check.conclusion == "success"
    mine = bot.bot_comments(7)
    assert len([c for c in mine if "gwi:status" in c.body]) == 1
    assert len([c for c in mine if "approved: pushing" in c.body]) == 1


async def test_a_github_that_keeps_failing_ends_the_run_cleanly_with_a_readable_reason(
    make_bot: Callable[..., Any]
) -> None:
    sleeps: list[float] = []
    bot = await _pr(make_bot, sleeps, job_retry=JobRetry(max_attempts=2, base_delay=0.01),
                    reconcile_interval=0.1)
    # Two tries of the job, four requests each, and the failed run's own report: all 502.
    bot.fake.fault("checks/update", status=502, times=12)
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    [view] = bot.views()
    assert view.ctx.state is RunState.FAILED and view.ctx.outcome is Outcome.ERROR
    error = view.ctx.error or ""
    assert error.startswith("GitHub or git kept failing: GitHubError: GitHub PATCH"
                            " /repos/octo-org/widgets/check-runs/")
    assert "failed after 4 attempts (502)" in error and "gave up after 4 attempts" in error
    assert verify_bundle(bot.runs.run_dir(view.ctx.run_id)).ok
    [job] = await bot.client.app[STORE].list_jobs(kind="pr.run")
    assert job.status.value == "failed" and job.attempts == 2
    assert job.last_error and "502" in job.last_error and "\n" not in job.last_error
    assert len(sleeps) == 9 and max(sleeps) <= POLICY.max_delay  # 3 waits for each failed call

    # GitHub answers again: the next reconciliation shows the failure, with its reason.
    [check] = bot.check_runs()
    await until(lambda: check.status == "completed")
    assert check.conclusion == "failure" and "gave up after 4 attempts" in check.output["summary"]
    assert len(bot.check_runs()) == 1


async def test_a_rate_limit_longer_than_gwi_waits_fails_at_once_and_writes_nothing(
    make_bot: Callable[..., Any]
) -> None:
    sleeps: list[float] = []
    bot = await _pr(make_bot, sleeps, job_retry=JobRetry(max_attempts=2, base_delay=0.01))
    bot.fake.fault("pulls/get", status=403, retry_after=3600, times=2)
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    assert sleeps == []  # an hour is more than gwi waits: it says so instead of waiting
    [job] = await bot.client.app[STORE].list_jobs(kind="pr.run")
    assert job.status.value == "failed"
    assert job.last_error == (
        "GitHubError: GitHub GET /repos/octo-org/widgets/pulls/7 failed (403): rate limited"
        " (403): You have exceeded a secondary rate limit. Please wait a few minutes before"
        " you try again.; GitHub asks to wait 3600 s, longer than the 30 s gwi waits")
    assert bot.views() == [] and bot.check_runs() == [] and bot.bot_comments(7) == []


def answer_late(fake: Any, operations: set[str], seconds: float) -> None:
    """The next call of each of ``operations`` is carried out at once, and its answer held
    back ``seconds``: GitHub acted on a request whose answer the client never saw."""
    dispatch, left = fake._dispatch, set(operations)

    async def late(request: Any, raw: bytes, call: Any) -> Any:
        answer = await dispatch(request, raw, call)
        if call.operation_id in left:
            left.discard(call.operation_id)
            await asyncio.sleep(seconds)
        return answer

    fake._dispatch = late


async def test_a_create_that_timed_out_is_not_sent_twice(make_bot: Callable[..., Any]) -> None:
    """A POST that made a check-run or a comment but whose answer timed out is not sent again
    (a second check-run would stay queued for ever, a second comment would be noise): the
    job's retry looks, and finds what the first one made."""
    sleeps: list[float] = []
    bot = await _pr(make_bot, sleeps, resolvable=False,
                    job_retry=JobRetry(max_attempts=3, base_delay=0.05))
    answer_late(bot.fake, {"checks/create", "issues/create-comment"}, 2.0)
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.NEEDS_HUMAN
    assert len(bot.fake.calls_to("checks/create")) == 1
    assert len(bot.fake.calls_to("issues/create-comment")) == 1
    [check] = bot.check_runs()
    assert check.status == "completed" and check.external_id == view.ctx.run_id
    [comment] = bot.bot_comments(7)
    assert "gwi:status" in comment.body
    [job] = await bot.client.app[STORE].list_jobs(kind="pr.run")
    assert job.status.value == "done" and job.attempts == 3
    assert "not sent again" in (job.last_error or "")


async def test_a_502_after_github_created_the_status_comment_makes_no_second_one(
    make_bot: Callable[..., Any]
) -> None:
    """Issue 17, item 6: creating is not idempotent; a retry looks for what the first try made."""
    bot = await _pr(make_bot, [])
    bot.fake.fault("issues/create-comment", status=502, after_acting=True)
    bot.fake.fault("checks/create", status=502, after_acting=True)
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    [view] = bot.views()
    assert view.ctx.state is RunState.AWAITING_APPROVAL
    assert len([c for c in bot.bot_comments(7) if "gwi:status" in c.body]) == 1
    assert len(bot.check_runs()) == 1
    assert [c.status for c in bot.fake.calls_to("issues/create-comment")] == [502]
    assert [c.status for c in bot.fake.calls_to("checks/create")] == [502]
