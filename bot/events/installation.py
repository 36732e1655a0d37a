"""App lifecycle events (ping, installation, installation_repositories): logged for operators."""

from __future__ import annotations

from typing import Any

from gidgethub import routing, sansio

from bot import logs
from bot.queue.records import UnitOfWork

router = routing.Router()
log = logs.get_logger("gwi.events.installation")


def _login(data: Any) -> str | None:
    account = data.get("account") if isinstance(data, dict) else None
    login = account.get("login") if isinstance(account, dict) else None
    return login if isinstance(login, str) else None


def _names(repositories: Any) -> str:
    if not isinstance(repositories, list):
        return "-"
    names = [r["full_name"] for r in repositories if isinstance(r, dict) and "full_name" in r]
    return ",".join(str(name) for name in names) or "-"


@router.register("ping")
async def on_ping(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
    """GitHub sends a ping when the webhook is created: proof the secret and URL work."""
    log.info("app.ping", hook_id=event.data.get("hook_id"), zen=event.data.get("zen"))


@router.register("installation")
async def on_installation(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
    log.info(
        "app.installation",
        account=_login(event.data.get("installation")),
        repositories=_names(event.data.get("repositories")),
    )


@router.register("installation_repositories")
async def on_installation_repositories(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
    log.info(
        "app.installation_repositories",
        account=_login(event.data.get("installation")),
        added=_names(event.data.get("repositories_added")),
        removed=_names(event.data.get("repositories_removed")),
    )
