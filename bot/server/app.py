"""The aiohttp application: POST /webhook persists deliveries and answers, GET /healthz; in one
of three roles (web and workers, web only, workers only)."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from gidgethub import routing

from bot import logs
from bot.events.router import build_router
from bot.metrics import CONTENT_TYPE_LATEST, Metrics
from bot.queue.factory import open_queue
from bot.queue.interface import QueueStore
from bot.queue.records import DEFAULT_RETRY, JobRetry, StoreError
from bot.queue.workers import JobHandler, JobHandlers, WorkerConfig, Workers
from bot.server.intake import DELIVERY_HEADER, EVENT_HEADER, Refusal, read_delivery
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.github.service import GitHubService

SETTINGS = web.AppKey("settings", Settings)
SECRETS: web.AppKey[tuple[str, ...]] = web.AppKey("secrets")
STORE = web.AppKey("store", QueueStore)
WORKERS = web.AppKey("workers", Workers)
METRICS = web.AppKey("metrics", Metrics)
#: Set once the start-up's downtime recovery has ended (done, given up, or not needed).
RECOVERED = web.AppKey("recovered", asyncio.Event)

#: What a process does: "all" (`gwi serve`: intake, pages and workers), "web" (`gwi serve
#: --web-only`: intake and pages), "worker" (`gwi worker`: the workers, downtime recovery and
#: the reconcile loop, with /healthz and /metrics). docs/scaling.md, "Processes and roles".
Role = Literal["all", "web", "worker"]

HEALTH_TIMEOUT_SECONDS = 2.0
ACCEPTED = b'{"status": "accepted"}'
DUPLICATE = b'{"status": "duplicate"}'

log = logs.get_logger("gwi.server")


def default_job_handlers() -> dict[str, JobHandler]:
    """Extra job kinds a caller adds (tests, plugins); gwi's own come with ``github``."""
    return {}


def gh_job_handlers() -> dict[str, JobHandler]:
    """gwi's job kinds: runs, aborts, commands, and the gated push."""
    from bot.github.handlers import JOB_HANDLERS

    return dict(JOB_HANDLERS)


def create_app(
    settings: Settings,
    *,
    router: routing.Router | None = None,
    job_handlers: JobHandlers | None = None,
    services: Mapping[str, object] | None = None,
    worker_config: WorkerConfig | None = None,
    delivery_retry: JobRetry = DEFAULT_RETRY,
    job_retry: JobRetry = DEFAULT_RETRY,
    run_workers: bool = True,
    github_options: Mapping[str, Any] | None = None,
    reconcile_interval: float | None = None,
    page_options: Mapping[str, Any] | None = None,
    role: Role = "all",
) -> web.Application:
    """The web application. Its start-up opens the queue and starts the workers.

    ``router`` defaults to every module in :mod:`bot.events`; ``services`` are passed to
    every handler as keyword arguments. With ``settings.github`` (the App's credentials) the process
    does gwi's work: the run, command and push jobs, with the GitHub service as ``gh``; and
    at start-up it asks GitHub to redeliver what it missed while down
    (:mod:`bot.server.recovery`) and looks for runs a crash left behind, again every
    ``reconcile_interval`` seconds (five lease lengths by default). ``github_options`` go to
    the GitHub client (retry policy, clocks: tests). With ``settings.pages`` the run pages and
    their GitHub sign-in are served too (:mod:`bot.pages.routes`; ``page_options`` go to
    ``add_run_pages``: the page renderer, clocks). ``run_workers=False`` stores deliveries
    without processing them (tests of the intake alone). ``role="web"`` is that, without the
    GitHub service (a web process never calls GitHub for the App); ``role="worker"`` serves no
    webhooks and no pages, only the workers with /healthz and /metrics. Raises
    :class:`GwiError` when no webhook secret is configured.
    """
    run_workers = run_workers and role != "web"
    app = web.Application(client_max_size=settings.server.max_body_bytes)
    app[SETTINGS] = settings
    # A worker takes no webhooks: it needs no secret to check their signatures.
    app[SECRETS] = settings.server.webhook_secrets() if role != "worker" else ()
    metrics = app[METRICS] = Metrics()
    recovered = app[RECOVERED] = asyncio.Event()
    config = worker_config or WorkerConfig(
        delivery_workers=settings.server.workers,
        job_workers=settings.server.workers,
        lease_seconds=settings.server.lease_seconds,
    )

    async def queue_and_workers(app: web.Application) -> AsyncIterator[None]:
        store = await asyncio.to_thread(open_queue, settings, delivery_retry=delivery_retry,
                                        job_retry=job_retry)
        try:
            await _check_signing_key(settings, store)
        except BaseException:
            await asyncio.to_thread(store.close)
            raise
        async with contextlib.AsyncExitStack() as stack:
            handlers = dict(job_handlers if job_handlers is not None else {})
            extra = dict(services or {})
            gh = None
            github = settings.github if role != "web" else None
            if github is not None:
                from bot.github.service import open_service

                gh = await stack.enter_async_context(
                    open_service(settings, github, store, metrics, **dict(github_options or {}))
                )
                handlers = {**gh_job_handlers(), **handlers}
                extra = {"gh": gh, "app_id": github.app_id, **extra}
            workers = Workers(
                store,
                router if router is not None else build_router(),
                handlers,
                config,
                extra,
                on_job=lambda kind, outcome: metrics.jobs_finished.labels(kind, outcome).inc(),
                admit=_owners_admitted(settings.server.allowed_owners),
            )
            app[STORE] = store
            app[WORKERS] = workers
            tasks: list[asyncio.Task[None]] = []
            try:
                if gh is None or not run_workers:
                    recovered.set()  # nothing to recover from: no App credentials
                if run_workers:
                    await workers.start()
                    if gh is not None:
                        every = reconcile_interval or 5 * config.lease_seconds
                        tasks.append(asyncio.create_task(
                            _recover_deliveries(gh, store, recovered)))
                        tasks.append(asyncio.create_task(
                            _reconcile_forever(gh, workers, every, config.lease_seconds)))
                yield
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await workers.stop()
        await asyncio.to_thread(store.close)

    app.cleanup_ctx.append(queue_and_workers)
    if role != "worker":
        app.router.add_post("/webhook", handle_webhook)
    app.router.add_get("/healthz", handle_healthz)
    app.router.add_get("/metrics", handle_metrics)
    if settings.pages is not None and role != "worker":
        from bot.pages.routes import add_run_pages

        options = {"anchors": _anchors_of(app), **dict(page_options or {})}
        add_run_pages(app, settings, **options)
    return app


def _anchors_of(app: web.Application) -> Callable[[str], Awaitable[tuple[int, str] | None]]:
    """The run pages' view of the anchors gwi published, kept in the queue's PR index."""
    async def latest(run_id: str) -> tuple[int, str] | None:
        index = app[STORE].run_index()
        await index.ensure_schema()  # idempotent; a process without the App never made it
        return await index.latest_anchor(run_id)

    return latest


async def _check_signing_key(settings: Settings, store: QueueStore) -> None:
    """With a shared database, every process must sign with the one key the first recorded:
    a run may be continued by any of them, and its bundle must verify with one key."""
    if settings.server.database_url is None:
        return  # one host: its key file is the only key
    from bot.errors import GwiError
    from bot.runs.signing import fingerprint, load_or_create_signer

    signer = await asyncio.to_thread(load_or_create_signer, settings.signing_key_path,
                                     allow_in_work_tree=settings.key_in_work_tree)
    recorded = await store.record_signing_key(signer.public_key_hex)
    if recorded != signer.public_key_hex:
        raise GwiError(
            f"the signing key {settings.signing_key_path} (fingerprint"
            f" {fingerprint(signer.public_key_hex)}) is not the one the database records for"
            f" this deployment ({fingerprint(recorded)}): give every process the same"
            " GWI_SIGNING_KEY file")
    log.info("signing_key.checked", fingerprint=fingerprint(recorded))


#: While a recovery round leaves deliveries to ask for, the next comes this much later...
RECOVERY_ROUND_SECONDS = 60.0
#: ... up to this many rounds after start-up.
RECOVERY_ROUNDS = 30


async def _recover_deliveries(gh: GitHubService, store: QueueStore,
                              recovered: asyncio.Event) -> None:
    """Start-up: have GitHub redeliver what it could not deliver while the server was down,
    in bounded rounds a minute apart until none is left (a long outage may leave hundreds)."""
    try:
        await _recovery_rounds(gh, store)
    finally:
        recovered.set()


async def _recovery_rounds(gh: GitHubService, store: QueueStore) -> None:
    from bot.server import recovery

    for round_ in range(1, RECOVERY_ROUNDS + 1):
        try:
            report = await recovery.recover_missed_deliveries(
                gh.app, store, max_redeliveries=recovery.MAX_REDELIVERIES)
        except Exception:  # never fatal: the server works without it, and says so
            log.exception("webhooks.recovery_failed")
            return
        if not report.left:
            return
        if round_ < RECOVERY_ROUNDS:
            log.info("webhooks.recovery_continues", round=round_, missing=report.missing,
                     redelivered=report.redelivered, next_in_s=RECOVERY_ROUND_SECONDS)
            await asyncio.sleep(RECOVERY_ROUND_SECONDS)
    log.warning("webhooks.recovery_incomplete", rounds=RECOVERY_ROUNDS,
                reason="deliveries are still missing; the next start-up looks again")


async def _reconcile_forever(
    gh: GitHubService, workers: Workers, interval: float, lease_seconds: float
) -> None:
    """Start-up, then every ``interval``: queue work for runs a crash left behind."""
    from bot.github.handle_reconcile import reconcile_runs

    while True:
        try:
            # A bundle younger than two leases may belong to a process still indexing it.
            if await reconcile_runs(gh, orphan_age=2 * lease_seconds):
                workers.notify_jobs()
        except Exception:  # the next round tries again
            log.exception("runs.reconcile_failed")
        await asyncio.sleep(interval)


async def handle_webhook(request: web.Request) -> web.Response:
    """Verify, dedupe and durably store one delivery, then answer; the work happens later.

    GitHub waits at most 10 seconds and does not retry by itself, so this makes no API
    call and does no heavy work: once the row is committed the delivery cannot be lost.
    """
    with request.app[WORKERS].intake.request():
        return await _take(request)


async def _take(request: web.Request) -> web.Response:
    app = request.app
    limit = app[SETTINGS].server.max_body_bytes
    length = request.content_length
    if length is not None and length > limit:
        return _refuse(request, Refusal(413, f"body is larger than {limit} bytes"))
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _refuse(request, Refusal(413, f"body is larger than {limit} bytes"))
    secrets = app[SECRETS]
    delivery = read_delivery(request.headers, body, secrets)
    if isinstance(delivery, Refusal):
        return _refuse(request, delivery)
    # Action, installation and repository are read from the payload by the worker, which
    # logs them; the request path does not parse the body (see read_delivery).
    with logs.bind(delivery_id=delivery.delivery_id, event=delivery.event):
        try:
            # GitHub gives up after 10 s and records a timeout; a 503 within the bound is a
            # failure it shows, which downtime recovery asks for again. The write goes on
            # behind the answer: if it lands after all, the redelivery is a duplicate.
            async with asyncio.timeout(app[SETTINGS].server.intake_timeout):
                stored = await app[STORE].insert_delivery(delivery)
        except TimeoutError:
            log.error("delivery.not_stored", reason="the queue database did not answer in time")
            return web.json_response({"error": "the queue database did not answer in time"},
                                     status=503)
        except StoreError:
            log.exception("delivery.not_stored")
            return web.json_response({"error": "the delivery could not be stored"}, status=503)
        if not stored:
            log.info("delivery.duplicate")
            app[METRICS].deliveries_deduplicated.inc()
            return _answer(DUPLICATE, 200)
        app[METRICS].deliveries_received.inc()
        app[WORKERS].notify_deliveries()
        log.debug("delivery.accepted", bytes=len(body))
        # GitHub's ping checks the hook is reachable; it gets a plain 200 like a redelivery.
        return _answer(ACCEPTED, 200 if delivery.event == "ping" else 202)


def _answer(body: bytes, status: int) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


def _refuse(request: web.Request, refusal: Refusal) -> web.Response:
    request.app[METRICS].deliveries_rejected.labels(_REASONS.get(refusal.status, "other")).inc()
    log.warning(
        "delivery.refused",
        status=refusal.status,
        reason=refusal.reason,
        delivery_id=request.headers.get(DELIVERY_HEADER, "")[:128] or None,
        event=request.headers.get(EVENT_HEADER, "")[:64] or None,
        remote=request.remote,
    )
    return web.json_response({"error": refusal.reason}, status=refusal.status)


async def handle_healthz(request: web.Request) -> web.Response:
    """200 with the queue's database and depth while it answers promptly, else 503."""
    store = request.app[STORE]
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            counts = await store.counts()
    except (TimeoutError, StoreError) as exc:
        error = str(exc) or f"the queue database did not answer within {HEALTH_TIMEOUT_SECONDS:g} s"
        return web.json_response({"status": "unavailable", "database": store.describe(),
                                  "error": error}, status=503)
    return web.json_response({"status": "ok", "database": store.describe(),
                              "deliveries": counts.deliveries, "jobs": counts.jobs})


#: The rejection reasons /metrics counts (the status tells them apart; the text has details).
_REASONS = {401: "signature", 400: "malformed", 413: "too_large"}


async def handle_metrics(request: web.Request) -> web.Response:
    """Prometheus' text format; with GWI_METRICS_TOKEN set, only for that bearer token."""
    token = request.app[SETTINGS].server.metrics_token
    if token is not None:
        given = request.headers.get("Authorization", "")
        expected = f"Bearer {token.get_secret_value()}"
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return web.json_response({"error": "a bearer token is required"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
    metrics = request.app[METRICS]
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            counts = await request.app[STORE].counts()
    except (TimeoutError, StoreError):
        log.warning("metrics.queue_unavailable")
    else:
        for table, by_status in (("deliveries", counts.deliveries), ("jobs", counts.jobs)):
            for status, count in by_status.items():
                metrics.queue_items.labels(table, status).set(count)
            age = counts.oldest_pending_s.get(table)
            metrics.queue_oldest_pending_seconds.labels(table).set(age or 0.0)
    body = await asyncio.to_thread(metrics.render)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _owners_admitted(allowed: frozenset[str]) -> Callable[[Mapping[str, Any]], str | None] | None:
    """With GWI_ALLOWED_OWNERS set, a delivery is served only for those accounts' installations
    (the repository's owner, else the installation's account); others get nothing but a log
    line, after the 2xx that keeps GitHub from retrying them."""
    if not allowed:
        return None

    def admit(payload: Mapping[str, Any]) -> str | None:
        owner = _owner(payload)
        if owner is not None and owner.lower() in allowed:
            return None
        return f"the account {owner or '(none)'} is not in GWI_ALLOWED_OWNERS"

    return admit


def _owner(payload: Mapping[str, Any]) -> str | None:
    for path in (("repository", "owner", "login"), ("installation", "account", "login"),
                 ("organization", "login")):
        node: Any = payload
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, str):
            return node
    return None
