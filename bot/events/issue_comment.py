"""`issue_comment` events: comments on pull requests that hold `/gwi` commands.

Only a new comment by a person can carry out a command. An edit never does (an approval must be
the words as first posted, never words swapped in later), and neither does a comment by an app or
a bot (gwi included: its own comments must never trigger it). When such a comment holds an
approval, a job still records the refusal in the run's audit log; people get a short reply,
bots none, so that two bots can never talk to each other.
"""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio
from pydantic import ValidationError

from bot import logs
from bot.github.jobs import COMMAND_JOB, CommandRequest, Commenter
from bot.github.models_events import IssueCommentEvent
from bot.github.slash_commands import parse_comment
from bot.queue.records import UnitOfWork

router = routing.Router()
log = logs.get_logger("gwi.events.issue_comment")


@router.register("issue_comment", action="created")
@router.register("issue_comment", action="edited")
async def on_comment(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
    try:
        data = IssueCommentEvent.model_validate(event.data)
    except ValidationError as exc:
        log.warning("event.unusable", reason=str(exc.errors()[0]["msg"]))
        return
    if data.issue.pull_request is None:
        return
    edited = data.action == "edited"
    sender = data.sender  # for an edit, who edited (maintainers can edit others' comments)
    if not edited and sender.id != data.comment.user.id:
        log.warning("event.unusable", reason="a new comment whose sender is not its author")
        return
    parsed = parse_comment(data.comment.body)
    if not parsed.commands:
        return
    if (edited or sender.is_bot) and not any(c.word == "approve" for c in parsed.commands):
        return  # nothing to carry out, and nothing worth a line in the audit log
    request = CommandRequest(
        repository=data.repository.full_name, number=data.issue.number,
        installation_id=data.installation.id, delivery_id=event.delivery_id or "unknown",
        comment_id=data.comment.id, comment_url=data.comment.html_url,
        comment_body=data.comment.body, comment_created_at=data.comment.created_at,
        sender=Commenter(id=sender.id, login=sender.login, type=sender.type), edited=edited,
    )
    # Not serialised behind the PR's run job: `/gwi abort` must reach a run that is working,
    # and approvals are serialised by the run's own lock. One job per comment (or per edit),
    # however often GitHub delivers it.
    unit.enqueue_job(COMMAND_JOB, request.model_dump(mode="json"),
                     idempotency_key=(f"comment-edit:{data.comment.id}:{event.delivery_id}"
                                      if edited else f"comment:{data.comment.id}"))
