"""`pull_request` events: queue a run for a new head, abort runs of a closed pull request."""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio
from pydantic import ValidationError

from bot import logs
from bot.github.jobs import ABORT_JOB, AbortRequest, RunRequest, enqueue_run
from bot.github.models_events import PullRequestEvent
from bot.queue.records import UnitOfWork
from bot.schemas.state import Outcome

router = routing.Router()
log = logs.get_logger("gwi.events.pull_request")


def _parse(event: sansio.Event) -> PullRequestEvent | None:
    try:
        return PullRequestEvent.model_validate(event.data)
    except ValidationError as exc:
        log.warning("event.unusable", reason=str(exc.errors()[0]["msg"]))
        return None


@router.register("pull_request", action="opened")
@router.register("pull_request", action="reopened")
@router.register("pull_request", action="synchronize")
@router.register("pull_request", action="ready_for_review")
async def on_new_head(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
    """One run per (pull request, head): the job skips heads that already have theirs."""
    data = _parse(event)
    if data is None:
        return
    pr = data.pull_request
    request = RunRequest(repository=data.repository.full_name, number=pr.number,
                         installation_id=data.installation.id, head_sha=pr.head.sha,
                         reopened=data.action == "reopened",
                         trigger=f"pull_request.{data.action}")
    # A reopened PR may be closed and reopened again on the same head: each reopening counts.
    again = f"/{event.delivery_id}" if request.reopened else ""
    enqueue_run(unit, request, dedupe=f"{request.repository}#{pr.number}@{pr.head.sha}"
                f"/{data.action}{again}")


@router.register("pull_request", action="edited")
async def on_edited(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
    """A new base branch makes every run of the PR stale: start again against the new base."""
    data = _parse(event)
    if data is None or "base" not in data.changes:
        return
    pr = data.pull_request
    enqueue_run(unit, RunRequest(repository=data.repository.full_name, number=pr.number,
                                 installation_id=data.installation.id, forced=True,
                                 base_ref=pr.base.ref,
                                 trigger="pull_request.edited (new base branch)"),
                dedupe=f"{data.repository.full_name}#{pr.number}:base:{pr.base.ref}@"
                f"{event.delivery_id}")


@router.register("pull_request", action="closed")
async def on_closed(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
    data = _parse(event)
    if data is None:
        return
    pr = data.pull_request
    unit.cancel_pending_jobs(f"pr:{data.repository.full_name.lower()}#{pr.number}",
                             kind="pr.run")
    unit.enqueue_job(ABORT_JOB, AbortRequest(
        repository=data.repository.full_name, number=pr.number,
        installation_id=data.installation.id, outcome=Outcome.CANCELLED,
        reason="the pull request was closed", only_if_closed=True).model_dump(),
        idempotency_key=f"closed:{event.delivery_id}")
