"""`check_run` events: "Re-run" on gwi's own check-run starts a new run for that head."""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio
from pydantic import ValidationError

from bot import logs
from bot.github.jobs import RunRequest, enqueue_run
from bot.github.models_events import CheckRunEvent
from bot.github.render import CHECK_NAME
from bot.queue.records import UnitOfWork

router = routing.Router()
log = logs.get_logger("gwi.events.check_run")


@router.register("check_run", action="rerequested")
async def on_rerequested(event: sansio.Event, unit: UnitOfWork, *, app_id: str | None = None,
                         **_: Any) -> None:
    try:
        data = CheckRunEvent.model_validate(event.data)
    except ValidationError as exc:
        log.warning("event.unusable", reason=str(exc.errors()[0]["msg"]))
        return
    check = data.check_run
    if check.name != CHECK_NAME or check.app is None or str(check.app.id) != str(app_id):
        return  # another app's check, or not ours to re-run
    for pull in check.pull_requests:
        enqueue_run(unit, RunRequest(repository=data.repository.full_name, number=pull.number,
                                     installation_id=data.installation.id, forced=True,
                                     head_sha=check.head_sha,
                                     trigger="check_run.rerequested"),
                    dedupe=f"rerequested:{event.delivery_id}:{pull.number}")
