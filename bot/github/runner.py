"""Runs on pull requests: the jobs that create, drive, supersede and abort runs, and keep the
check-run and the one living comment in step with them."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot import logs
from bot.engine.index import IndexedRun
from bot.engine.pipeline import STOPS
from bot.engine.queue import Job, UnitOfWork
from bot.errors import GwiError
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
from bot.runs.bundle import RunFinished, RunNotFound
from bot.runs.ids import run_created_at
from bot.runs.view import RunView
from bot.schemas.run import RUN_ID_RE, Actor, ActorType, CapabilityMode, RunContext, RunOptions
from bot.schemas.state import TERMINAL, Outcome, RunState

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
    state = view.ctx.state
    if state in TERMINAL or (comment and state in STOPS):
        # Recorded only once GitHub has it all: a crash before this line is published again.
        await gh.index.set_published(run_id, state.value, finished=state in TERMINAL)


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
                await _give_up(gh, client, run_id,
                               f"GitHub or git kept failing: {type(exc).__name__}: {exc}")
            raise


async def _prepare_run(gh: GitHubService, client: RepoClient,
                       request: RunRequest) -> str | None:
    """The run to drive for this request (new, or one a crash interrupted), or None."""
    pr = await client.get_pull_request(request.number)
    if pr.state != "open":
        log.info("run.skipped", reason="the pull request is closed")
        runs = await gh.index.for_pr(request.repository, request.number)
        await supersede(gh, client, runs, reason="the pull request is closed",
                        outcome=Outcome.CANCELLED)
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
            if latest.published_state != latest_ctx.state.value:
                # a crash came between the run's stop and its report on GitHub
                await publish(gh, client, latest.run_id, comment=True)
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


async def _give_up(gh: GitHubService, client: RepoClient, run_id: str, reason: str) -> None:
    """The last attempt failed too: end the run cleanly so nothing stays in progress."""
    def fail() -> None:
        with gh.runs.open(run_id) as run:
            if not run.finished:
                run.fail(reason[:3000])

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
                    reason: str, outcome: Outcome = Outcome.SUPERSEDED) -> None:
    for run in runs:
        if not run.finished and await end_run(gh, run.run_id, outcome, reason):
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


# -- after a crash: runs nobody is working on --------------------------------------------------------
#
# A run's job can die with the process at any point: between a state change and its report to
# GitHub, after its last try, or (rarely) between creating the bundle and indexing it. The lease
# on the job brings most of that back; what it cannot (a job out of tries, a report that was
# never sent) is found by `reconcile_runs`, which runs at start-up and then periodically, and is
# handed to a `pr.reconcile` job keyed with the pull request's other jobs, so it never races
# them.

#: A run resumed this many times that is still stuck (each time the process died on it) is
#: failed instead: it is probably what kills the process.
MAX_RESUMES = 2


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    run_id: str
    state: RunState  # the state the scan saw
    give_up: bool = False


async def reconcile_pr(job: Job, unit: UnitOfWork, *, gh: GitHubService, **_: Any) -> None:
    """Bring one run that nobody is working on to where it belongs: shown on GitHub if it has
    stopped, resumed (or failed, when resuming did not help) if it has not."""
    request = ReconcileRequest.model_validate(job.payload)
    with logs.bind(repository=request.repository, pr=request.number, run_id=request.run_id):
        client = gh.work_client(request.installation_id, request.repository)
        run = await gh.index.get(request.run_id)
        if run is None:
            return
        state = await asyncio.to_thread(_recovered_state, gh, run.run_id)
        if state in STOPS:
            latest = await gh.index.latest(request.repository, request.number)
            await publish(gh, client, run.run_id,
                          comment=latest is not None and latest.run_id == run.run_id)
            log.info("run.republished", state=state.value)
            return
        if request.give_up:
            log.warning("run.given_up", state=state.value)
            await _give_up(gh, client, run.run_id, "gwi stopped while working on this run"
                           " several times (each restart resumed it): giving up on it")
            return
        if state is RunState.APPLYING:
            from bot.github.gate import APPLY_JOB, ApplyRequest

            # The gate re-verifies everything and makes its commit and push at most once.
            unit.enqueue_job(APPLY_JOB, ApplyRequest(
                repository=request.repository, number=request.number,
                installation_id=request.installation_id, run_id=run.run_id).model_dump(),
                key=pr_key(request.repository, request.number),
                idempotency_key=f"apply:{run.run_id}:resume:{job.id}")
            log.info("run.resuming", state=state.value)
            return
        log.info("run.resuming", state=state.value)
        resumed = await _prepare_run(gh, client, RunRequest(
            repository=request.repository, number=request.number,
            installation_id=request.installation_id, trigger="resumed after a restart"))
        if resumed is not None:
            with logs.bind(run_id=resumed):
                await drive(gh, client, resumed)
        if gh.runs.read_context(run.run_id).state not in STOPS:
            await _give_up(gh, client, run.run_id, "gwi stopped while working on this run,"
                           " and it could not be resumed (see the log)")


async def reconcile_runs(gh: GitHubService, *, orphan_age: float) -> int:
    """Queue a `pr.reconcile` job for every run that needs one; returns how many were queued.

    A run needs one when its stopped state has not been shown on GitHub, or when it has not
    stopped and no job of its pull request is pending or running (a live job will get to it).
    Run bundles the index lacks (the process died between creating and indexing one) older
    than ``orphan_age`` seconds are adopted when they are their pull request's newest run, and
    failed otherwise.
    """
    store = gh.index.store
    await _settle_orphans(gh, orphan_age)
    live = await store.call(lambda conn: {row[0] for row in conn.execute(
        "SELECT DISTINCT key FROM jobs WHERE status IN ('pending', 'running')"
        " AND key IS NOT NULL")})
    queued = 0
    for run in await gh.index.unfinished():
        key = pr_key(run.repository, run.pr)
        if key in live:
            continue
        try:
            ctx = await asyncio.to_thread(gh.runs.read_context, run.run_id)
        except GwiError as exc:  # a bundle a person moved or broke: say so, leave it
            log.warning("run.unreadable", run_id=run.run_id, error=str(exc))
            continue
        if ctx.state.value == run.published_state or ctx.installation_id is None:
            continue
        earlier = [j for j in await store.list_jobs(kind=RECONCILE_JOB, key=key)
                   if j.payload.get("run_id") == run.run_id
                   and j.payload.get("state") == ctx.state.value]
        request = ReconcileRequest(
            repository=ctx.repository.full_name, number=run.pr,
            installation_id=ctx.installation_id, run_id=run.run_id, state=ctx.state,
            give_up=ctx.state not in STOPS and len(earlier) >= MAX_RESUMES)
        result = await store.enqueue_job(
            RECONCILE_JOB, request.model_dump(mode="json"), key=key,
            idempotency_key=f"reconcile:{run.run_id}:{ctx.state.value}:{len(earlier)}")
        if result.created:
            queued += 1
            log.info("run.reconcile_queued", run_id=run.run_id, state=ctx.state.value,
                     give_up=request.give_up)
    return queued


def _recent_run_ids(gh: GitHubService, since: float) -> list[str]:
    """Ids of the bundles created since ``since`` (run ids begin with their UTC creation
    time), oldest first, without looking into older ones."""
    try:
        names = os.listdir(gh.runs.runs_dir)
    except FileNotFoundError:
        return []
    cutoff = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(since))
    return sorted(n for n in names if n[:16] >= cutoff and RUN_ID_RE.fullmatch(n)
                  and gh.runs.exists(n))


async def _settle_orphans(gh: GitHubService, orphan_age: float) -> None:
    ids = await asyncio.to_thread(_recent_run_ids, gh, time.time() - ORPHAN_HORIZON)
    known = await gh.index.known(ids)
    cutoff = time.time() - orphan_age
    for run_id in [i for i in reversed(ids) if i not in known][:MAX_ORPHANS]:
        try:
            ctx = await asyncio.to_thread(_read_orphan, gh, run_id, cutoff)
        except GwiError as exc:  # a bundle a person moved or broke: say so, leave it
            log.warning("run.unreadable", run_id=run_id, error=str(exc))
            continue
        if (ctx is None or ctx.pull_request is None or ctx.installation_id is None or ctx.state in TERMINAL
                or ctx.created_at.timestamp() > cutoff):
            continue  # a local run, a finished one, or one another process is still making
        repository, number = ctx.repository.full_name, ctx.pull_request.number
        newer = [r for r in await gh.index.for_pr(repository, number)
                 if r.head_sha == ctx.head.sha or r.created_at >= ctx.created_at.timestamp()]
        if newer:
            reason = (f"gwi stopped before recording this run; run {newer[-1].run_id} took its"
                      " place")
            await asyncio.to_thread(_fail_orphan, gh, run_id, reason)
            log.warning("run.orphan_failed", run_id=run_id, replaced_by=newer[-1].run_id)
            continue
        await gh.index.add(run_id, repository, number, ctx.head.sha, ctx.base.sha)
        log.warning("run.orphan_adopted", run_id=run_id)


def _recovered_state(gh: GitHubService, run_id: str) -> RunState:
    """The run's state once opening it has finished what a crash interrupted (a write, the
    seal, or the signature of a run that had just ended: nobody else opens a finished run)."""
    with gh.runs.open(run_id) as run:
        return run.ctx.state


def _read_orphan(gh: GitHubService, run_id: str, cutoff: float) -> RunContext | None:
    """An unindexed bundle's context. One a crash cut short before its run.json was in place
    is recovered first (its audit log holds the context and the write to finish), once it is
    older than ``cutoff`` and so no bundle another process is still creating; None before."""
    try:
        return gh.runs.read_context(run_id)
    except RunNotFound:
        if run_created_at(run_id).timestamp() > cutoff:
            return None
    with gh.runs.open(run_id) as run:  # finishes or rebuilds run.json from the log
        return run.ctx


def _fail_orphan(gh: GitHubService, run_id: str, reason: str) -> None:
    with gh.runs.open(run_id) as run:
        if not run.finished:
            run.fail(reason)


#: Unindexed bundles looked at per scan, newest first (each costs a read of its run.json).
MAX_ORPHANS = 100
#: How far back a scan looks for them: earlier scans have seen anything older.
ORPHAN_HORIZON = 7 * 24 * 3600.0
RECONCILE_JOB = "pr.reconcile"

JOB_HANDLERS = {RUN_JOB: run_pr, ABORT_JOB: abort_pr, RECONCILE_JOB: reconcile_pr}
