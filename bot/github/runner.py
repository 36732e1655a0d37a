"""Runs on pull requests: the jobs that create, drive, supersede and abort runs, and keep the
check-run and the one living comment in step with them."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot import logs
from bot.engine.index import IndexedRun
from bot.engine.pipeline import STOPS
from bot.engine.queue import Job, UnitOfWork
from bot.github.client import RepoClient
from bot.github.models import CheckOutput, PullRequest
from bot.github.render import CHECK_NAME, COMMENT_MARKER, check_view, comment_body
from bot.github.repo_config import (
    CONFIG_PATH,
    DraftPolicy,
    RepoConfig,
    RepoConfigError,
    parse_repo_config,
)
from bot.github.service import GitHubService
from bot.runs.state import TERMINAL, Outcome, RunState
from bot.runs.store import RunFinished
from bot.runs.view import RunView
from bot.schemas.run import Actor, ActorType, CapabilityMode, RunOptions

log = logs.get_logger("gwi.runner")
GITHUB = Actor(type=ActorType.SYSTEM, id="github")

RUN_JOB = "pr.run"
ABORT_JOB = "pr.abort"


def pr_key(repository: str, number: int) -> str:
    """Jobs of one pull request run one at a time, in order."""
    return f"pr:{repository.lower()}#{number}"


class RunRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    head_sha: str | None = None  # the head the event saw; None: whatever is current
    forced: bool = False  # /gwi run or a re-requested check: run even if one exists
    trigger: str  # what asked: "pull_request.synchronize", "/gwi run by @x", ...


class AbortRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    outcome: Outcome
    reason: str
    actor: str = "github"


def enqueue_run(unit: UnitOfWork, request: RunRequest, *, dedupe: str) -> None:
    """Queue a run; ``dedupe`` makes the same logical request enqueue once."""
    unit.enqueue_job(RUN_JOB, request.model_dump(), key=pr_key(request.repository,
                                                                 request.number),
                     idempotency_key=f"run:{dedupe}")


async def load_config(client: RepoClient) -> RepoConfig:
    """`.github/gwi.yml` from the default branch (never the PR's branch, which its author
    controls); raises `RepoConfigError` when it is broken."""
    repo = await client.get_repo()
    return parse_repo_config(await client.get_file(CONFIG_PATH, ref=repo.default_branch))


# -- check-runs and the comment ----------------------------------------------------------------

async def ensure_check_run(gh: GitHubService, client: RepoClient, run: IndexedRun) -> int:
    """The run's check-run id, creating the check-run once (found again after a crash by its
    external id, so a retry never makes a second one)."""
    if run.check_run_id is not None:
        return run.check_run_id
    for existing in await client.list_check_runs(run.head_sha, check_name=CHECK_NAME):
        if existing.external_id == run.run_id:
            await gh.index.set_check_run(run.run_id, existing.id)
            return existing.id
    view = check_view(RunView.load(gh.runs, run.run_id))
    created = await client.create_check_run(CHECK_NAME, run.head_sha, status=view.status,
                                            conclusion=view.conclusion, output=view.output,
                                            external_id=run.run_id)
    await gh.index.set_check_run(run.run_id, created.id)
    return created.id


async def publish(gh: GitHubService, client: RepoClient, run_id: str, *,
                  comment: bool) -> None:
    """Bring the check-run (and, when asked, the living comment) up to the run's state."""
    run = await gh.index.get(run_id)
    if run is None:
        return
    view = RunView.load(gh.runs, run_id)
    check_id = await ensure_check_run(gh, client, run)
    shown = check_view(view)
    await client.update_check_run(check_id, status=shown.status, conclusion=shown.conclusion,
                                  output=shown.output)
    if comment:
        await publish_comment(client, run.pr, view)
    if view.ctx.state in TERMINAL:
        await gh.index.set_finished(run_id)


async def publish_comment(client: RepoClient, number: int, view: RunView) -> None:
    """One comment per pull request, edited in place. A run with nothing to say (no conflicts)
    writes none, but brings an existing one up to date."""
    quiet = view.ctx.outcome is Outcome.NO_CHANGES_NEEDED
    if quiet and await client.find_marked_comment(number, COMMENT_MARKER) is None:
        return
    await client.upsert_marked_comment(number, COMMENT_MARKER, comment_body(view))


async def report_config_error(client: RepoClient, head_sha: str, error: RepoConfigError) -> None:
    await client.create_check_run(
        CHECK_NAME, head_sha, status="completed", conclusion="failure",
        output=CheckOutput(title=f"{CONFIG_PATH} is not valid", summary=str(error)),
    )


# -- the run job -----------------------------------------------------------------------------------

async def run_pr(job: Job, unit: UnitOfWork, *, gh: GitHubService, **_: Any) -> None:
    request = RunRequest.model_validate(job.payload)
    with logs.bind(repository=request.repository, pr=request.number):
        client = gh.work_client(request.installation_id, request.repository)
        run_id: str | None = None
        try:
            run_id = await _prepare_run(gh, client, request)
            if run_id is not None:
                with logs.bind(run_id=run_id):
                    await drive(gh, client, run_id)
        except Exception as exc:
            if run_id is not None and job.attempts >= job.max_attempts:
                await _give_up(gh, client, run_id, exc)
            raise


async def _prepare_run(gh: GitHubService, client: RepoClient,
                       request: RunRequest) -> str | None:
    """The run to drive for this request (new, or one a crash interrupted), or None."""
    pr = await client.get_pull_request(request.number)
    if pr.state != "open":
        log.info("run.skipped", reason="the pull request is closed")
        return None
    if request.head_sha is not None and pr.head.sha != request.head_sha and not request.forced:
        log.info("run.skipped", reason="a newer head is queued", seen=request.head_sha)
        return None
    try:
        config = await load_config(client)
    except RepoConfigError as error:
        log.warning("run.bad_config", error=str(error))
        await report_config_error(client, pr.head.sha, error)
        return None
    if not request.forced:
        if not config.auto_run:
            log.info("run.skipped", reason="auto_run is off in .github/gwi.yml")
            return None
        if pr.draft and config.drafts is DraftPolicy.WAIT:
            log.info("run.skipped", reason="draft pull requests wait (.github/gwi.yml: drafts)")
            return None
    runs = await gh.index.for_pr(request.repository, request.number)
    same_head = [r for r in runs if r.head_sha == pr.head.sha]
    if same_head and not request.forced:
        latest = same_head[-1]
        latest_ctx = gh.runs.read_context(latest.run_id)
        if latest_ctx.state not in STOPS:
            return latest.run_id  # interrupted by a crash or restart: resume it
        if latest_ctx.outcome is not Outcome.STALE:  # a stale run's base moved: run again
            log.info("run.skipped", reason="this head has its run", run_id=latest.run_id)
            return None
    await supersede(gh, client, runs, reason=f"superseded: {request.trigger}")
    return await _create_run(gh, client, request, pr, config)


async def _create_run(gh: GitHubService, client: RepoClient, request: RunRequest,
                      pr: PullRequest, config: RepoConfig) -> str:
    token = await client.token()
    repo = await client.get_repo()
    clone_url = repo.clone_url or f"https://github.com/{request.repository}.git"
    refs = await gh.cache.fetch_pull(request.repository, clone_url, number=request.number,
                                     base_ref=pr.base.ref, token=token)
    owner, _, name = request.repository.partition("/")
    fork = pr.head.repo_full_name.lower() != request.repository.lower()
    run_id = gh.runs.create(
        {
            "repository": {"owner": owner, "name": name, "full_name": request.repository},
            "pull_request": {"number": pr.number, "url": pr.html_url},
            "base": {"ref": pr.base.ref, "sha": refs.base_sha},
            "head": {"ref": pr.head.ref, "sha": refs.head_sha},
            "initiator": {"type": ActorType.SYSTEM, "id": request.trigger[:200]},
            "installation_id": request.installation_id,
            "agents": gh.settings.llm.agent_config,
            "capabilities": CapabilityMode.READ_ONLY if fork and not pr.maintainer_can_modify
            else CapabilityMode.GATED_WRITE,
            "options": RunOptions(ignore_paths=list(config.ignore_paths)),
            "workspace": str(refs.git_dir),
        },
        actor=GITHUB,
    )
    await gh.index.add(run_id, request.repository, pr.number, refs.head_sha, refs.base_sha)
    log.info("run.created", run_id=run_id, head=refs.head_sha[:12], base=refs.base_sha[:12])
    return run_id


async def drive(gh: GitHubService, client: RepoClient, run_id: str) -> None:
    """Step the run (in a thread: git and the resolver are slow) and report each step."""
    engine = gh.engine()
    await publish(gh, client, run_id, comment=False)
    while True:
        ctx = await asyncio.to_thread(engine.step, run_id)
        stop = ctx.state in STOPS
        await publish(gh, client, run_id, comment=stop)
        if stop:
            log.info("run.stopped", state=ctx.state.value,
                     outcome=ctx.outcome.value if ctx.outcome else None)
            return


async def _give_up(gh: GitHubService, client: RepoClient, run_id: str, exc: Exception) -> None:
    """The last attempt failed too: end the run cleanly so nothing stays in progress."""
    def fail() -> None:
        with gh.runs.open(run_id) as run:
            if not run.finished:
                run.fail(f"GitHub or git kept failing: {type(exc).__name__}: {exc}"[:3000])

    await asyncio.to_thread(fail)
    try:
        await publish(gh, client, run_id, comment=True)
    except Exception:  # GitHub may be what is failing; the bundle says what happened
        log.exception("run.publish_failed")


async def end_run(gh: GitHubService, run_id: str, outcome: Outcome, reason: str,
                  actor: Actor = GITHUB) -> bool:
    """Abort a run that has not ended (True), or leave a finished one alone (False).

    In a thread: the run's lock may be held by a step that is still working.
    """
    def abort() -> bool:
        with gh.runs.open(run_id) as run:
            if run.finished or run.ctx.state is RunState.APPLYING:
                return False  # an approved push in flight finishes; the gate re-checks
            try:
                run.transition(RunState.ABORTED, outcome=outcome, reason=reason[:3000],
                               actor=actor)
            except RunFinished:
                return False
        return True

    return await asyncio.to_thread(abort)


async def supersede(gh: GitHubService, client: RepoClient, runs: list[IndexedRun], *,
                    reason: str) -> None:
    for run in runs:
        if not run.finished and await end_run(gh, run.run_id, Outcome.SUPERSEDED, reason):
            await publish(gh, client, run.run_id, comment=False)


# -- the abort job ----------------------------------------------------------------------------------

async def abort_pr(job: Job, unit: UnitOfWork, *, gh: GitHubService, **_: Any) -> None:
    request = AbortRequest.model_validate(job.payload)
    with logs.bind(repository=request.repository, pr=request.number):
        client = gh.work_client(request.installation_id, request.repository)
        actor = Actor(type=ActorType.USER if request.actor != "github" else ActorType.SYSTEM,
                      id=request.actor)
        for run in await gh.index.for_pr(request.repository, request.number):
            if run.finished:
                continue
            if await end_run(gh, run.run_id, request.outcome, request.reason, actor):
                log.info("run.aborted", run_id=run.run_id, reason=request.reason)
            await publish(gh, client, run.run_id, comment=True)


JOB_HANDLERS = {RUN_JOB: run_pr, ABORT_JOB: abort_pr}
