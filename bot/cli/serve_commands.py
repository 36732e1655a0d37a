"""`gwi serve` and `gwi worker`: run a web process, a worker, or both in one, until SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
from typing import TYPE_CHECKING, Any

from bot.errors import GwiError

if TYPE_CHECKING:
    from aiohttp import web

    from bot.server.app import Role


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the GitHub App's web process: webhook intake, queue workers, health check",
        description=(
            "Listen on $PORT for GitHub webhooks (POST /webhook) and health checks"
            " (GET /healthz); store each delivery durably and process it in workers."
            " Settings come from the environment: GITHUB_WEBHOOK_SECRET, GITHUB_APP_ID and"
            " GITHUB_PRIVATE_KEY or GITHUB_PRIVATE_KEY_PATH (required),"
            " GITHUB_WEBHOOK_SECRET_OLD, PORT, GWI_HOST, GWI_DATA_DIR, GWI_WORKERS,"
            " GWI_LOG_LEVEL, GWI_MAX_BODY_BYTES, GWI_LEASE_SECONDS."
        ),
    )
    parser.add_argument(
        "--web-only",
        action="store_true",
        help=("take webhooks and serve pages only, and leave the work to `gwi worker`"
              " processes sharing GWI_DATABASE_URL (required with this flag)"),
    )
    _extra_module_option(parser)
    parser.set_defaults(func=serve_command)
    worker = subparsers.add_parser(
        "worker",
        help="run queue workers only (no webhooks): needs GWI_DATABASE_URL",
        description=(
            "Process the deliveries and jobs that `gwi serve --web-only` processes store in the"
            " shared database (GWI_DATABASE_URL, required), ask GitHub to redeliver what was"
            " missed while gwi was down, and resume runs a crash left behind. Serves GET"
            " /healthz and /metrics on $PORT. On SIGTERM, work in progress gets 20 s to finish,"
            " the rest is handed back. Needs GITHUB_APP_ID and the App's private key,"
            " GWI_SIGNING_KEY; reads GWI_DATA_DIR, GWI_WORKERS, GWI_LEASE_SECONDS,"
            " GWI_LOG_LEVEL, PORT, GWI_HOST."
        ),
    )
    _extra_module_option(worker)
    worker.set_defaults(func=worker_command, web_only=False)


def _extra_module_option(parser: Any) -> None:
    parser.add_argument(
        "--extra-module",
        action="append",
        default=[],
        metavar="MODULE",
        help=(
            "also import MODULE and add its `router` (event handlers) and `job_handlers`"
            " (job kinds), when it has them; for tests and local experiments"
        ),
    )


def worker_command(args: argparse.Namespace) -> int:
    return _run(args, "worker")


def serve_command(args: argparse.Namespace) -> int:
    return _run(args, "web" if args.web_only else "all")


def _run(args: argparse.Namespace, role: Role) -> int:
    # Heavy imports stay here: other commands do not pay for aiohttp.

    from bot.events.router import build_router
    from bot.logs import configure_logging
    from bot.server.app import create_app, default_job_handlers
    from bot.settings import load_settings

    settings = load_settings()
    if role != "all" and settings.server.database_url is None:
        # Without a database the queue is a SQLite file in this process's data folder: a
        # web-only process on a host (or a container) of its own would acknowledge deliveries
        # no worker ever sees, and on one host `gwi serve` already does both (scaling.md).
        command = "gwi worker" if role == "worker" else "gwi serve --web-only"
        raise GwiError(f"{command} needs GWI_DATABASE_URL: web and worker processes share"
                       " their work through PostgreSQL; without it, run `gwi serve`, which"
                       " does both in one process")
    if role != "worker":
        settings.server.webhook_secrets()  # refuse to start without one, before anything
    if role != "web":
        settings.require_github()  # the App's credentials: the workers call GitHub
    configure_logging(settings.server.log_level)
    routers: list[Any] = []
    job_handlers = default_job_handlers()
    for name in args.extra_module:
        module_router, module_jobs = _load_extra(name)
        if module_router is not None:
            routers.append(module_router)
        job_handlers.update(module_jobs)
    app = create_app(settings, router=build_router(*routers),
                     job_handlers=job_handlers, role=role)
    asyncio.run(run_server(app, settings.server.host, settings.server.port, role))
    return 0


def _load_extra(name: str) -> tuple[Any, dict[str, Any]]:
    from gidgethub import routing

    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise GwiError(f"--extra-module {name}: cannot import it: {exc}") from None
    router = getattr(module, "router", None)
    jobs = getattr(module, "job_handlers", {})
    if router is not None and not isinstance(router, routing.Router):
        raise GwiError(f"--extra-module {name}: `router` is not a gidgethub Router")
    if not isinstance(jobs, dict):
        raise GwiError(f"--extra-module {name}: `job_handlers` is not a dict")
    if router is None and not jobs:
        raise GwiError(f"--extra-module {name}: it has neither `router` nor `job_handlers`")
    return router, jobs


async def run_server(app: web.Application, host: str, port: int, role: Role = "all") -> None:
    """Serve ``app`` until SIGTERM/SIGINT, then shut down gracefully (workers first)."""
    from aiohttp import web

    from bot.logs import get_logger
    from bot.queue.records import StoreError

    log = get_logger("gwi.server")
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()
    except StoreError as exc:
        from bot.server.app import SETTINGS

        hint = ("check GWI_DATABASE_URL and that the server answers"
                if app[SETTINGS].server.database_url is not None
                else "set GWI_DATA_DIR to a writable folder")
        raise GwiError(f"{exc} ({hint})") from None
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise GwiError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        for address in runner.addresses:
            log.info("serve.listening", host=address[0], port=address[1], role=role)
        await stop.wait()
        log.info("serve.stopping")
    finally:
        await runner.cleanup()
    log.info("serve.stopped")
