"""The one event router: every event module's Router merged, as bedevere's __main__ does."""

from __future__ import annotations

from gidgethub import routing

from bot.events import check_run, installation, issue_comment, pull_request

# One Router per event family; add a module here to route its events. Order does not
# matter: the workers call every matching handler, each isolated from the others.
ROUTERS: tuple[routing.Router, ...] = (
    installation.router,
    pull_request.router,
    issue_comment.router,
    check_run.router,
)


def build_router(*extra: routing.Router) -> routing.Router:
    """A fresh Router holding every module's routes, plus ``extra`` ones (tests, plugins)."""
    return routing.Router(*ROUTERS, *extra)
