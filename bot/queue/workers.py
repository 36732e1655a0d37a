"""Workers: asyncio tasks taking stored deliveries to the event router and jobs to handlers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from gidgethub import routing, sansio

from bot import logs
from bot.queue.intake_priority import IntakePriority
from bot.queue.interface import QueueStore
from bot.queue.records import (
    Classification,
    DeliveryRecord,
    DeliveryStatus,
    Job,
    JobStatus,
    LeaseLost,
    StoreError,
    UnitOfWork,
    classify,
    parse_payload,
)

T = TypeVar("T")

# An event handler is called as ``handler(event, unit, **services)``: ``event`` a
# gidgethub ``sansio.Event``, ``unit`` the :class:`UnitOfWork` whose jobs commit together
# with the delivery being marked done. A job handler is called as
# ``handler(job, unit, **services)``. Handlers take ``**kwargs`` so services can be added.
JobHandler = Callable[..., Awaitable[None]]
JobHandlers = Mapping[str, JobHandler]

log = logs.get_logger("gwi.worker")


class PermanentJobError(Exception):
    """Raised by a job handler when trying again cannot help: the job fails at once."""


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    """How many workers, how long their leases, how patient they are."""

    delivery_workers: int = 2
    job_workers: int = 2
    lease_seconds: float = 60.0
    # Event handlers only decide and enqueue; one that takes longer than this is stuck.
    handler_timeout: float = 60.0
    # Jobs (agent runs) may take long; their lease is renewed while they work.
    job_timeout: float | None = None
    # Workers are woken when work arrives; this bounds the wait for delayed retries.
    poll_interval: float = 1.0
    # On shutdown, work in progress gets this long to finish before it is handed back.
    shutdown_grace: float = 20.0
    # While webhook requests are being answered, a delivery worker waits up to this long
    # before its next claim (see IntakePriority); 0 turns the courtesy off.
    intake_priority_wait: float = 0.1


def handler_name(callback: Callable[..., Any]) -> str:
    """A handler's stable name (module and qualified name), recorded once it has succeeded."""
    module = getattr(callback, "__module__", None) or "?"
    qualname = getattr(callback, "__qualname__", None) or repr(callback)
    return f"{module}.{qualname}"


class Workers:
    """The delivery and job worker tasks of one process, and the way to wake them."""

    def __init__(
        self,
        store: QueueStore,
        router: routing.Router,
        job_handlers: JobHandlers,
        config: WorkerConfig = WorkerConfig(),
        services: Mapping[str, object] | None = None,
        on_job: Callable[[str, str], None] | None = None,
        admit: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> None:
        # ``admit(payload)`` returns why a delivery is not served (an account not allowed),
        # or None: such a delivery is finished with no handler run, and logged.
        self._admit = admit
        # ``on_job(kind, outcome)`` hears how each try of a job ended ("done", "failed", a
        # retry as "pending", "lease_lost"): the server counts them for /metrics.
        self._on_job = on_job
        self._store = store
        self._router = router
        self._job_handlers = dict(job_handlers)
        self._config = config
        self._services = dict(services or {})
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.intake = IntakePriority()
        self._deliveries_ready = asyncio.Event()
        self._jobs_ready = asyncio.Event()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []
        self._unsubscribe: Callable[[], None] = lambda: None

    def notify_deliveries(self) -> None:
        """Tell the delivery workers a delivery was stored."""
        self._deliveries_ready.set()

    def notify_jobs(self) -> None:
        """Tell the job workers a job was enqueued."""
        self._jobs_ready.set()

    async def start(self) -> None:
        """Take up what a crashed process left (expired leases), then start the tasks."""
        deliveries, jobs = await self._store.recover_expired()
        if deliveries or jobs:
            log.warning("worker.recovered", deliveries=deliveries, jobs=jobs)
        self._stopping = False
        # Work another process stores (a shared database) wakes these workers too.
        self._unsubscribe = self._store.subscribe(self.notify_deliveries, self.notify_jobs)
        for index in range(self._config.delivery_workers):
            owner = f"{self._owner}:d{index}"
            loop = self._loop(owner, self.run_delivery_once, self._deliveries_ready)
            self._tasks.append(asyncio.create_task(loop))
        if self._job_handlers:
            for index in range(self._config.job_workers):
                owner = f"{self._owner}:j{index}"
                loop = self._loop(owner, self.run_job_once, self._jobs_ready)
                self._tasks.append(asyncio.create_task(loop))
        log.info(
            "worker.started",
            delivery_workers=self._config.delivery_workers,
            job_workers=self._config.job_workers if self._job_handlers else 0,
            job_kinds=",".join(sorted(self._job_handlers)) or "-",
        )

    async def stop(self) -> None:
        """Let work in progress finish (up to the grace period), then hand the rest back."""
        self._stopping = True
        self._unsubscribe()
        self._deliveries_ready.set()
        self._jobs_ready.set()
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=self._config.shutdown_grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        log.info("worker.stopped", interrupted=len(pending))

    async def _loop(
        self,
        owner: str,
        run_once: Callable[[str], Awaitable[object | None]],
        ready: asyncio.Event,
    ) -> None:
        while not self._stopping:
            # Cleared before looking, so work stored while we look wakes us right away.
            ready.clear()
            try:
                outcome = await run_once(owner)
            except Exception:  # a worker outlives any one failure
                log.exception("worker.error", owner=owner)
                outcome = None
            if outcome is None and not self._stopping:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._config.poll_interval):
                        await ready.wait()

    # -- deliveries ----------------------------------------------------------------------

    async def run_delivery_once(self, owner: str) -> DeliveryStatus | None:
        """Claim one ready delivery and process it; None when there was none."""
        await self.intake.wait(self._config.intake_priority_wait)
        claim = await self._store.claim_delivery(owner, self._config.lease_seconds)
        if claim is None:
            return None
        with logs.bind(
            delivery_id=claim.delivery_id,
            event=claim.event,
            action=claim.action,
            installation_id=claim.installation_id,
            repository=claim.repository,
        ):
            try:
                return await self._process_delivery(claim, owner)
            except asyncio.CancelledError:
                await asyncio.shield(self._store.release_delivery(claim, owner))
                log.info("delivery.released", attempt=claim.attempts)
                raise

    async def _process_delivery(self, claim: DeliveryRecord, owner: str) -> DeliveryStatus | None:
        try:
            data = parse_payload(claim.body)
        except ValueError as exc:
            # Intake checks only the body's shape; this is where a malformed one is found.
            # Trying again cannot help.
            return await self._finish(claim, owner, [], [str(exc)], None, permanent=True)
        classification = classify(data)
        refused = self._admit(data) if self._admit is not None else None
        if refused is not None:
            with logs.bind(**classification._asdict()):
                log.warning("delivery.not_served", reason=refused)
            return await self._finish(claim, owner, [], [], classification)
        with logs.bind(**classification._asdict()):
            event = sansio.Event(data, event=claim.event, delivery_id=claim.delivery_id)
            completed: list[tuple[str, UnitOfWork]] = []
            errors: list[str] = []
            try:
                callbacks = self._router.fetch(event)
            except TypeError:
                # A routed-on field that is no string (an action that is a list): no handler
                # is for such a payload.
                log.warning("delivery.unroutable", attempt=claim.attempts)
                callbacks = frozenset()
            if callbacks:

                async def renew() -> bool:
                    return await self._store.renew_delivery(
                        claim, owner, self._config.lease_seconds
                    )

                try:
                    completed, errors = await self._under_lease(
                        self._dispatch(event, callbacks, claim.handlers_done), renew
                    )
                except LeaseLost:
                    log.warning("delivery.lease_lost", attempt=claim.attempts)
                    return None
            return await self._finish(claim, owner, completed, errors, classification)

    async def _finish(
        self,
        claim: DeliveryRecord,
        owner: str,
        completed: list[tuple[str, UnitOfWork]],
        errors: list[str],
        classification: Classification | None,
        *,
        permanent: bool = False,
    ) -> DeliveryStatus | None:
        try:
            status = await self._store.finish_delivery(
                claim,
                owner,
                completed,
                errors,
                classification=classification,
                permanent=permanent,
            )
        except LeaseLost:
            log.warning("delivery.lease_lost", attempt=claim.attempts)
            return None
        if any(unit.jobs for _, unit in completed):
            self.notify_jobs()
        fields: dict[str, object] = {"status": status.value, "attempt": claim.attempts}
        if errors:
            fields["errors"] = len(errors)
        if status is DeliveryStatus.FAILED:
            log.error("delivery.failed", last_error="; ".join(errors), **fields)
        elif status is DeliveryStatus.PENDING:
            log.warning("delivery.retry", **fields)
        else:
            log.info("delivery.processed", handlers=len(completed), **fields)
        return status

    async def _dispatch(
        self,
        event: sansio.Event,
        callbacks: Collection[Callable[..., Awaitable[None]]],
        already_done: frozenset[str],
    ) -> tuple[list[tuple[str, UnitOfWork]], list[str]]:
        """Call every handler the router has for ``event``, each on its own.

        gidgethub's ``Router.dispatch`` stops at the first handler that raises; here one
        handler's failure is recorded and the others still run. Handlers that succeeded on
        an earlier try are skipped, so a retry does not repeat them.
        """
        completed: list[tuple[str, UnitOfWork]] = []
        errors: list[str] = []
        for callback in sorted(callbacks, key=handler_name):
            name = handler_name(callback)
            if name in already_done:
                continue
            unit = UnitOfWork()
            try:
                async with asyncio.timeout(self._config.handler_timeout):
                    await callback(event, unit, **self._services)
            except Exception as exc:  # isolated, recorded, retried
                log.exception("handler.failed", handler=name)
                errors.append(f"{name}: {type(exc).__name__}: {exc}")
            else:
                completed.append((name, unit))
        return completed, errors

    # -- jobs ----------------------------------------------------------------------------

    async def run_job_once(self, owner: str) -> JobStatus | None:
        """Claim one ready job of a registered kind and run it; None when there was none."""
        kinds = self._job_handlers.keys()
        job = await self._store.claim_job(owner, kinds, self._config.lease_seconds)
        if job is None:
            return None
        # What made the job ("delivery:<id>", ...) and the installation it works for go on
        # every line it logs, so a run's lines lead back to the webhook that asked for it.
        installation = job.payload.get("installation_id")
        with logs.bind(job_id=job.id, job_kind=job.kind, job_key=job.key, job_origin=job.origin,
                       installation_id=installation if isinstance(installation, int) else None):
            try:
                status = await self._process_job(job, owner)
                if self._on_job is not None:
                    self._on_job(job.kind, status.value if status else "lease_lost")
                return status
            except asyncio.CancelledError:
                await asyncio.shield(self._store.release_job(job, owner))
                log.info("job.released", attempt=job.attempts)
                raise

    async def _process_job(self, job: Job, owner: str) -> JobStatus | None:
        handler = self._job_handlers[job.kind]
        unit = UnitOfWork()

        async def work() -> None:
            async with asyncio.timeout(self._config.job_timeout):
                await handler(job, unit, **self._services)

        async def renew() -> bool:
            return await self._store.renew_job(job, owner, self._config.lease_seconds)

        try:
            try:
                await self._under_lease(work(), renew)
            except LeaseLost:
                raise
            except PermanentJobError as exc:
                log.error("job.failed", attempt=job.attempts, error=str(exc))
                return await self._store.fail_job(job, owner, str(exc), retry=False)
            except Exception as exc:  # recorded, retried with back-off
                log.exception("job.error", attempt=job.attempts)
                status = await self._store.fail_job(job, owner, f"{type(exc).__name__}: {exc}")
                if status is JobStatus.FAILED:
                    log.error("job.failed", attempt=job.attempts)
                return status
            await self._store.complete_job(job, owner, unit)
        except LeaseLost:
            log.warning("job.lease_lost", attempt=job.attempts)
            return None
        if unit.jobs:
            self.notify_jobs()
        log.info("job.done", attempt=job.attempts)
        return JobStatus.DONE

    # -- leases --------------------------------------------------------------------------

    async def _under_lease(self, work: Awaitable[T], renew: Callable[[], Awaitable[bool]]) -> T:
        """Await ``work`` while renewing its lease every third of the lease's length.

        If a renewal finds the lease gone (this worker stalled past its expiry and another
        took the item), the work is cancelled and :class:`LeaseLost` raised.
        """
        task = asyncio.ensure_future(work)
        interval = self._config.lease_seconds / 3
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=interval)
                if done:
                    return task.result()
                try:
                    held = await renew()
                except StoreError:
                    log.exception("lease.renew_failed")
                    continue
                if not held:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                    raise LeaseLost("the lease expired while the work was still running")
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
            raise
