"""`issue_comment` events: a new comment on a pull request that holds `/gwi` commands.

Edited and deleted comments, and comments by any app or bot (gwi itself included), are ignored
before anything is parsed: an edit must never turn into an approval, and gwi's own replies must
never trigger it.
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio
from pydantic import ValidationError

from bot import logs
from bot.engine.queue import UnitOfWork
from bot.events.commands import parse_comment
from bot.github.commands import COMMAND_JOB, CommandRequest
from bot.github.gate import Commenter
from bot.github.models_events import IssueCommentEvent

router = routing.Router()
log = logs.get_logger("gwi.events.issue_comment")


@router.register("issue_comment", action="created")
async def on_comment(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
    try:
        data = IssueCommentEvent.model_validate(event.data)
    except ValidationError as exc:
        log.warning("event.unusable", reason=str(exc.errors()[0]["msg"]))
        return
    if data.issue.pull_request is None or data.sender.is_bot or data.comment.user.is_bot:
        return
    if not parse_comment(data.comment.body).commands:
        return
    request = CommandRequest(
        repository=data.repository.full_name, number=data.issue.number,
        installation_id=data.installation.id, delivery_id=event.delivery_id or "unknown",
        comment_id=data.comment.id, comment_url=data.comment.html_url,
        comment_body=data.comment.body, comment_created_at=data.comment.created_at,
        sender=Commenter(id=data.sender.id, login=data.sender.login, type=data.sender.type),
    )
    # Not serialised behind the PR's run job: `/gwi abort` must reach a run that is working,
    # and approvals are serialised by the run's own lock. One job per comment, however often
    # GitHub delivers it.
    unit.enqueue_job(COMMAND_JOB, request.model_dump(mode="json"),
                     idempotency_key=f"comment:{data.comment.id}")
