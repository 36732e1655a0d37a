"""The `pr.abort` job: end the runs of a closed pull request, or of `/gwi abort`.
"""

from __future__ import annotations

from typing import Any

from bot import logs
from bot.github.handle_run import end_run
from bot.github.jobs import AbortRequest
from bot.github.publish import publish
from bot.github.service import GitHubService
from bot.queue.records import Job, UnitOfWork
from bot.schemas.run import Actor, ActorType

log = logs.get_logger("gwi.runner")


async def abort_pr(job: Job, unit: UnitOfWork, *, gh: GitHubService, **_: Any) -> None:
    request = AbortRequest.model_validate(job.payload)
    with logs.bind(repository=request.repository, pr=request.number):
        client = gh.work_client(request.installation_id, request.repository)
        if request.only_if_closed and (await client.get_pull_request(request.number)).state \
                == "open":
            log.warning("abort.skipped", reason="GitHub says the pull request is open: a"
                        " replayed or out-of-date close ends nothing")
            return
        actor = Actor(type=ActorType.USER if request.actor != "github" else ActorType.SYSTEM,
                      id=request.actor)
        for run in await gh.index.for_pr(request.repository, request.number):
            if run.finished:
                continue
            if await end_run(gh, run.run_id, request.outcome, request.reason, actor):
                log.info("run.aborted", run_id=run.run_id, reason=request.reason)
            await publish(gh, client, run.run_id, comment=True)
