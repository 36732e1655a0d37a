"""What GitHub shows of a run: the check-run, the one living comment, config errors, and replies
to commands (capped per pull request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from bot import logs
from bot.engine.pipeline import STOPS
from bot.github.client import RepoClient
from bot.github.failures import GitHubError
from bot.github.jobs import CommandRequest
from bot.github.markers import comment_marker
from bot.github.models import CheckOutput
from bot.github.render import CHECK_NAME, COMMENT_MARKER, check_view, comment_body
from bot.github.repo_config import (
    CONFIG_PATH,
    RepoConfig,
    RepoConfigError,
    parse_repo_config,
)
from bot.github.service import GitHubService
from bot.queue.records import IndexedRun
from bot.runs.view import RunView
from bot.schemas.state import TERMINAL, Outcome
from bot.settings import run_page_url

log = logs.get_logger("gwi.publish")


async def load_config(client: RepoClient) -> RepoConfig:
    """`.github/gwi.yml` from the default branch (never the PR's branch, which its author
    controls); raises `RepoConfigError` when it is broken."""
    repo = await client.get_repo()
    return parse_repo_config(await client.get_file(CONFIG_PATH, ref=repo.default_branch))


async def ensure_check_run(gh: GitHubService, client: RepoClient, run: IndexedRun) -> int:
    """The run's check-run id, creating the check-run once (found again after a crash by its
    external id, so a retry never makes a second one)."""
    if run.check_run_id is not None:
        return run.check_run_id
    for existing in await client.list_check_runs(run.head_sha, check_name=CHECK_NAME):
        if existing.external_id == run.run_id:
            await gh.index.set_check_run(run.run_id, existing.id)
            return existing.id
    page = run_page_url(gh.settings, run.run_id)
    view = check_view(RunView.load(gh.runs, run.run_id), page=page)
    try:
        created = await client.create_check_run(CHECK_NAME, run.head_sha, status=view.status,
                                                conclusion=view.conclusion, output=view.output,
                                                external_id=run.run_id, details_url=page)
    except GitHubError as exc:
        if exc.status is None or exc.status < 500:
            raise  # no answer: the job's retry looks later; 4xx: nothing was made
        # GitHub may have made it before failing: adopt it rather than make a second.
        for existing in await client.list_check_runs(run.head_sha, check_name=CHECK_NAME):
            if existing.external_id == run.run_id:
                await gh.index.set_check_run(run.run_id, existing.id)
                return existing.id
        raise
    await gh.index.set_check_run(run.run_id, created.id)
    return created.id


async def publish(gh: GitHubService, client: RepoClient, run_id: str, *,
                  comment: bool) -> None:
    """Bring the check-run (and, when asked, the living comment) up to the run's state."""
    run = await gh.index.get(run_id)
    if run is None:
        return
    view = RunView.load(gh.runs, run_id)
    if view.anchor is not None:  # kept where a bundle's holder cannot rewrite it
        await gh.index.record_anchor(run_id, *view.anchor)
    check_id = await ensure_check_run(gh, client, run)
    page = run_page_url(gh.settings, run_id)
    shown = check_view(view, page=page)
    await client.update_check_run(check_id, status=shown.status, conclusion=shown.conclusion,
                                  output=shown.output, details_url=page)
    if comment:
        await publish_comment(client, run.pr, view, page=page)
    state = view.ctx.state
    if state in TERMINAL or (comment and state in STOPS):
        # Recorded only once GitHub has it all: a crash before this line is published again.
        await gh.index.set_published(run_id, state.value, finished=state in TERMINAL)


async def publish_comment(client: RepoClient, number: int, view: RunView, *,
                          page: str | None) -> None:
    """One comment per pull request, edited in place. A run with nothing to say (no conflicts)
    writes none, but brings an existing one up to date. ``page`` is the run page's URL (None
    while run pages are off)."""
    quiet = view.ctx.outcome is Outcome.NO_CHANGES_NEEDED
    if quiet and await client.find_marked_comment(number, COMMENT_MARKER) is None:
        return
    await client.upsert_marked_comment(number, COMMENT_MARKER, comment_body(view, page=page))


async def report_config_error(client: RepoClient, head_sha: str, error: RepoConfigError) -> None:
    await client.create_check_run(
        CHECK_NAME, head_sha, status="completed", conclusion="failure",
        output=CheckOutput(title=f"{CONFIG_PATH} is not valid", summary=str(error)),
    )


async def reply(gh: GitHubService, client: RepoClient, request: CommandRequest,
                text: str, *, refusal: bool = False,
                exempt: Callable[[], Awaitable[bool]] | None = None) -> None:
    """Answer a command. Only refusals are rationed per pull request (a storm of bad commands
    must not make gwi spam it), and never for a sender ``exempt`` says holds the approver role;
    help, status and acknowledgements always get through. The first refusal past the ration is
    replaced by one notice saying when replies resume."""
    scope = f"replies:{request.repository.lower()}#{request.number}"
    if refusal and not await gh.index.take_slot(scope, limit=gh.reply_limit,
                                                window=gh.reply_window):
        if exempt is not None and await exempt():
            pass  # people who may approve are always answered
        elif not await gh.index.take_slot(scope + ":notice", limit=1, window=gh.reply_window):
            log.warning("reply.rate_limited", text=text[:200])
            return
        else:
            resume = datetime.now(UTC) + timedelta(seconds=gh.reply_window)
            text = (f"too many refused commands on this pull request: gwi stops answering them"
                    f" until about {resume:%H:%M} UTC (other commands, and people who may"
                    " approve, are still answered).")
    # One reply per command comment, found again by a hidden marker at its end: a job that
    # dies after replying and runs again edits that reply instead of adding a second one.
    marker = f"reply:{request.comment_id}"
    await client.upsert_marked_comment(
        request.number, marker, f"@{request.sender.login} {text}\n\n{comment_marker(marker)}")


async def report_base_moved(gh: GitHubService, client: RepoClient, run_id: str, number: int,
                            commit: str, why: str) -> None:
    """Said at once when the base moved (or the PR was retargeted) while a push was in flight."""
    log.warning("apply.base_moved_during_push", commit=commit, reason=why)
    text = (f"**gwi: the base moved during the push.** The approved merge `{commit[:12]}` was"
            f" pushed, but {why}: it merges the base the approval named, not the one the pull"
            " request has now. Review the pull request again before merging it.")
    run = await gh.index.get(run_id)
    if run is not None and run.check_run_id is not None:
        await client.update_check_run(run.check_run_id, conclusion="neutral", output=CheckOutput(
            title="Pushed, but the base moved during the push", summary=text))
    await client.upsert_marked_comment(number, f"base-moved:{run_id.lower()}",
                                       text)
