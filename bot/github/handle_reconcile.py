"""The `pr.reconcile` job and its scheduler: bring GitHub in step with runs a crash or an outage
left behind, and settle bundles the PR index never saw.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot import logs
from bot.engine.pipeline import STOPS
from bot.errors import GwiError
from bot.github.handle_run import drive, give_up, prepare_run
from bot.github.jobs import (
    APPLY_JOB,
    MAX_RESUMES,
    RECONCILE_JOB,
    ApplyRequest,
    ReconcileRequest,
    RunRequest,
    pr_key,
)
from bot.github.publish import publish
from bot.github.service import GitHubService
from bot.queue.records import Job, JobStatus, UnitOfWork
from bot.runs.bundle import RunNotFound
from bot.runs.ids import run_created_at
from bot.schemas.run import RunContext
from bot.schemas.state import TERMINAL, RunState

log = logs.get_logger("gwi.runner")


#: Unindexed bundles looked at per scan, newest first (each costs a read of its run.json).
MAX_ORPHANS = 100


#: How far back a scan looks for them: earlier scans have seen anything older.
ORPHAN_HORIZON = 7 * 24 * 3600.0


async def reconcile_pr(job: Job, unit: UnitOfWork, *, gh: GitHubService, **_: Any) -> None:
    """Bring one run that nobody is working on to where it belongs: shown on GitHub if it has
    stopped, resumed (or failed, when resuming did not help) if it has not."""
    request = ReconcileRequest.model_validate(job.payload)
    with logs.bind(repository=request.repository, pr=request.number, run_id=request.run_id):
        client = gh.work_client(request.installation_id, request.repository)
        run = await gh.index.get(request.run_id)
        if run is None:
            return
        state = await asyncio.to_thread(recovered_state, gh, run.run_id)
        if state in STOPS:
            latest = await gh.index.latest(request.repository, request.number)
            await publish(gh, client, run.run_id,
                          comment=latest is not None and latest.run_id == run.run_id)
            log.info("run.republished", state=state.value)
            return
        if request.give_up:
            log.warning("run.given_up", state=state.value)
            await give_up(gh, client, run.run_id, "gwi stopped while working on this run"
                           " several times (each restart resumed it): giving up on it")
            return
        if state is RunState.APPLYING:
            # The gate re-verifies everything and makes its commit and push at most once.
            unit.enqueue_job(APPLY_JOB, ApplyRequest(
                repository=request.repository, number=request.number,
                installation_id=request.installation_id, run_id=run.run_id).model_dump(),
                key=pr_key(request.repository, request.number),
                idempotency_key=f"apply:{run.run_id}:resume:{job.id}")
            log.info("run.resuming", state=state.value)
            return
        log.info("run.resuming", state=state.value)
        resumed = await prepare_run(gh, client, RunRequest(
            repository=request.repository, number=request.number,
            installation_id=request.installation_id, trigger="resumed after a restart"))
        if resumed is not None:
            with logs.bind(run_id=resumed):
                await drive(gh, client, resumed)
        if gh.runs.read_context(run.run_id).state not in STOPS:
            await give_up(gh, client, run.run_id, "gwi stopped while working on this run,"
                           " and it could not be resumed (see the log)")


async def reconcile_runs(gh: GitHubService, *, orphan_age: float) -> int:
    """Queue a `pr.reconcile` job for every run that needs one; returns how many were queued.

    A run needs one when its stopped state has not been shown on GitHub, or when it has not
    stopped and no job of its pull request is pending or running (a live job will get to it).
    Run bundles the index lacks (the process died between creating and indexing one) older
    than ``orphan_age`` seconds are adopted when they are their pull request's newest run, and
    failed otherwise.
    """
    store = gh.queue
    await _settle_orphans(gh, orphan_age)
    live = await store.busy_keys()
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
        # Only finished rounds count: a job still pending or running is one another process
        # queued since `busy_keys` was read, and counting it would make a new key, a second job.
        earlier = [j for j in await store.list_jobs(kind=RECONCILE_JOB, key=key)
                   if j.payload.get("run_id") == run.run_id
                   and j.payload.get("state") == ctx.state.value
                   and j.status not in (JobStatus.PENDING, JobStatus.RUNNING)]
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
    return gh.runs.list_ids(since=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(since)))


async def _settle_orphans(gh: GitHubService, orphan_age: float) -> None:
    ids = await asyncio.to_thread(_recent_run_ids, gh, time.time() - ORPHAN_HORIZON)
    known = await gh.index.known(ids)
    cutoff = time.time() - orphan_age
    for run_id in [i for i in reversed(ids) if i not in known][:MAX_ORPHANS]:
        try:
            ctx = await asyncio.to_thread(read_orphan, gh, run_id, cutoff)
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


def recovered_state(gh: GitHubService, run_id: str) -> RunState:
    """The run's state once opening it has finished what a crash interrupted (a write, the
    seal, or the signature of a run that had just ended: nobody else opens a finished run)."""
    with gh.runs.open(run_id) as run:
        return run.ctx.state


def read_orphan(gh: GitHubService, run_id: str, cutoff: float) -> RunContext | None:
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
