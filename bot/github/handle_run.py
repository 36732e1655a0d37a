"""The `pr.run` job: create a run for a pull request's head, drive it through the pipeline, and
supersede or end the runs it replaces.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot import logs
from bot.engine.pipeline import STOPS
from bot.github.client import RepoClient
from bot.github.jobs import GITHUB, RunRequest
from bot.github.models import PullRequest
from bot.github.publish import load_config, publish, report_config_error
from bot.github.repo_config import (
    DraftPolicy,
    RepoConfig,
    RepoConfigError,
)
from bot.github.service import GitHubService
from bot.queue.records import IndexedRun, Job, UnitOfWork
from bot.runs.bundle import RunFinished
from bot.schemas.run import Actor, ActorType, CapabilityMode, RunOptions
from bot.schemas.state import Outcome, RunState

log = logs.get_logger("gwi.runner")


async def run_pr(job: Job, unit: UnitOfWork, *, gh: GitHubService, **_: Any) -> None:
    request = RunRequest.model_validate(job.payload)
    with logs.bind(repository=request.repository, pr=request.number):
        client = gh.work_client(request.installation_id, request.repository)
        run_id: str | None = None
        try:
            run_id = await prepare_run(gh, client, request)
            if run_id is not None:
                with logs.bind(run_id=run_id):
                    await drive(gh, client, run_id)
        except Exception as exc:
            if run_id is not None and job.attempts >= job.max_attempts:
                await give_up(gh, client, run_id,
                               f"GitHub or git kept failing: {type(exc).__name__}: {exc}")
            raise


async def prepare_run(gh: GitHubService, client: RepoClient,
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
    if request.base_ref is not None and same_head:
        newest = gh.runs.read_context(same_head[-1].run_id)
        if newest.base.ref == pr.base.ref and newest.outcome is not Outcome.STALE:
            # A base change this head's newest run already merges: a replayed `edited`.
            log.info("run.skipped", reason="this head already has a run against its base",
                     run_id=same_head[-1].run_id)
            return None
    if same_head and not request.forced:
        latest = same_head[-1]
        latest_ctx = gh.runs.read_context(latest.run_id)
        if latest_ctx.state not in STOPS:
            return latest.run_id  # interrupted by a crash or restart: resume it
        reopened = request.reopened and latest_ctx.outcome is Outcome.CANCELLED
        if latest_ctx.outcome is not Outcome.STALE and not reopened:
            # a stale run's base moved, a reopened PR's run was cancelled: both run again
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
            "initiator": ({"type": ActorType.USER, "id": request.requester.login}
                          if request.requester else
                          {"type": ActorType.SYSTEM, "id": request.trigger[:200]}),
            "installation_id": request.installation_id,
            "agents": gh.settings.llm.agent_config,
            "capabilities": CapabilityMode.READ_ONLY if fork and not pr.maintainer_can_modify
            else CapabilityMode.GATED_WRITE,
            "options": RunOptions(ignore_paths=list(config.ignore_paths),
                                  approver_role=config.approver_role.value),
            "workspace": str(refs.git_dir),
        },
        actor=GITHUB,
    )
    await gh.index.add(run_id, request.repository, pr.number, refs.head_sha, refs.base_sha)
    log.info("run.created", run_id=run_id, head=refs.head_sha[:12], base=refs.base_sha[:12])
    return run_id


async def drive(gh: GitHubService, client: RepoClient, run_id: str) -> None:
    """Step the run (in a thread: git and the resolver are slow) and report each step."""
    engine = gh.engine(await gh.workspace(client, gh.runs.read_context(run_id)))
    await publish(gh, client, run_id, comment=False)
    while True:
        started = time.monotonic()
        ctx = await asyncio.to_thread(engine.step, run_id)
        gh.metrics.run_stage_seconds.labels(ctx.state.value).observe(time.monotonic() - started)
        stop = ctx.state in STOPS
        await publish(gh, client, run_id, comment=stop)
        if stop:
            log.info("run.stopped", state=ctx.state.value,
                     outcome=ctx.outcome.value if ctx.outcome else None)
            return


async def give_up(gh: GitHubService, client: RepoClient, run_id: str, reason: str) -> None:
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
