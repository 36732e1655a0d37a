"""The one interface of the queue: what the web process, the event routing, the GitHub jobs and
the command line may ask of it, whatever keeps it (SQLite by default).

A backend keeps four promises: an acknowledged delivery is durable before ``insert_delivery``
returns; a delivery id is stored once; a claimed item is held under a lease that only its owner
can renew, finish or release, and that expires when its owner vanishes; a handler's
:class:`UnitOfWork` commits in the same transaction that finishes its item.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from bot.queue.records import (
    Classification,
    Delivery,
    DeliveryRecord,
    DeliveryStatus,
    EnqueueResult,
    IndexedRun,
    Job,
    JobStatus,
    QueueCounts,
    UnitOfWork,
)

Clock = Callable[[], float]


class RunIndex(abc.ABC):
    """The PR index: which run belongs to which PR and head, its check-run, what GitHub was
    last shown of it, its anchors, and the budgets against comment storms. The run bundles are
    the truth; this makes "the current run of PR #7" fast and tells a restart what still needs
    publishing."""

    @abc.abstractmethod
    async def ensure_schema(self) -> None: ...

    @abc.abstractmethod
    async def add(self, run_id: str, repository: str, pr: int, head_sha: str,
                  base_sha: str) -> None: ...

    @abc.abstractmethod
    async def set_check_run(self, run_id: str, check_run_id: int) -> None: ...

    @abc.abstractmethod
    async def set_finished(self, run_id: str) -> None: ...

    @abc.abstractmethod
    async def set_published(self, run_id: str, state: str, *, finished: bool) -> None:
        """Record that GitHub shows the run at ``state`` (a stop), finished or not."""

    @abc.abstractmethod
    async def record_anchor(self, run_id: str, seq: int, digest: str) -> None:
        """Keep a chain head (seq and hash) gwi published for the run, outside its bundle: a
        bundle cut back before it fails `gwi runs verify`. The first hash kept for a seq stays."""

    @abc.abstractmethod
    async def latest_anchor(self, run_id: str) -> tuple[int, str] | None:
        """The highest anchor kept for the run, if any."""

    @abc.abstractmethod
    async def unfinished(self) -> list[IndexedRun]:
        """Runs whose final check-run GitHub has not been shown yet, oldest first."""

    @abc.abstractmethod
    async def known(self, run_ids: list[str]) -> set[str]:
        """Which of ``run_ids`` the index has."""

    @abc.abstractmethod
    async def get(self, run_id: str) -> IndexedRun | None: ...

    @abc.abstractmethod
    async def for_pr(self, repository: str, pr: int) -> list[IndexedRun]:
        """The PR's runs, oldest first."""

    async def latest(self, repository: str, pr: int) -> IndexedRun | None:
        runs = await self.for_pr(repository, pr)
        return runs[-1] if runs else None

    @abc.abstractmethod
    async def forget(self, run_ids: list[str]) -> int:
        """Drop pruned runs from the index; returns how many rows went."""

    @abc.abstractmethod
    async def take_slot(self, scope: str, *, limit: int, window: float) -> bool:
        """Count one use of ``scope`` (replies on a PR, commands by a sender) if fewer than
        ``limit`` were counted in the last ``window`` seconds; False when the budget is spent."""


class RedeliveryLedger(abc.ABC):
    """What downtime recovery remembers between start-ups."""

    @abc.abstractmethod
    async def start_point(self) -> float | None:
        """Where to start looking: the later of the newest stored delivery and the last look
        (None when nothing was ever stored)."""

    @abc.abstractmethod
    async def save_marker(self, seen_until: float) -> None:
        """Remember that the delivery log was read up to ``seen_until`` (never moves back)."""

    @abc.abstractmethod
    async def known(self, guids: list[str], patience: float) -> tuple[set[str], set[str]]:
        """Of ``guids``: those stored as deliveries, and those redelivered since ``patience``."""

    @abc.abstractmethod
    async def remember(self, guid: str, github_id: int, at: float) -> None:
        """Record that GitHub was asked to redeliver ``guid``."""


class QueueStore(abc.ABC):
    """Durable deliveries and jobs with leases, and the two small tables kept beside them."""

    @abc.abstractmethod
    def run_index(self) -> RunIndex:
        """The PR index, kept in the same database."""

    @abc.abstractmethod
    def redelivery_ledger(self) -> RedeliveryLedger:
        """Downtime recovery's memory, kept in the same database."""

    @abc.abstractmethod
    async def busy_keys(self) -> set[str]:
        """The keys of every pending or running job."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the queue is kept, for /healthz and logs (never a password)."""

    @abc.abstractmethod
    async def record_signing_key(self, public_key: str) -> str:
        """Record ``public_key`` as the key that signs this deployment's bundles unless one is
        recorded already (the first process wins); return the recorded one."""

    @abc.abstractmethod
    async def replace_signing_key(self, old: str, new: str) -> str:
        """After a rotation: record ``new`` where ``old`` (or nothing) is recorded; return the
        recorded key (``new``, unless another key was recorded)."""

    def subscribe(self, on_delivery: Callable[[], None],
                  on_job: Callable[[], None]) -> Callable[[], None]:
        """Call ``on_delivery``/``on_job`` (in the caller's event loop) when another process
        stores a delivery or enqueues a job; returns the way to stop.

        A process wakes its own workers itself; a backend shared by several processes
        (PostgreSQL's LISTEN/NOTIFY) tells them about the others' work. Polling stays the
        fallback, so a backend with no such channel (SQLite: one process) does nothing here.
        """
        return lambda: None

    @abc.abstractmethod
    def close(self) -> None:
        """Finish the operations already submitted, then close the connections."""

    @abc.abstractmethod
    async def insert_delivery(self, delivery: Delivery) -> bool:
        """Persist a delivery; False when its delivery id is already stored (a redelivery).

        Returns once the row is committed and fsynced."""

    @abc.abstractmethod
    async def claim_delivery(self, owner: str, lease_seconds: float) -> DeliveryRecord | None:
        """Take the oldest ready delivery under a lease, or None when there is none."""

    @abc.abstractmethod
    async def finish_delivery(
        self,
        claim: DeliveryRecord,
        owner: str,
        completed: Sequence[tuple[str, UnitOfWork]],
        errors: Sequence[str],
        *,
        classification: Classification | None = None,
        permanent: bool = False,
    ) -> DeliveryStatus:
        """Record one try of a claimed delivery, atomically with its handlers' effects.

        ``completed`` names each handler that succeeded with the unit of work it filled:
        those effects commit now and the handler is not run again on a retry. With
        ``errors``, the delivery is tried again after a back-off, or marked failed with the
        errors once it has had its attempts (at once when ``permanent``). The payload's
        ``classification`` (action, installation, repository) is recorded on the row.
        Raises :class:`LeaseLost` (and writes nothing) when ``owner`` no longer holds it."""

    @abc.abstractmethod
    async def renew_delivery(self, claim: DeliveryRecord, owner: str, lease_seconds: float) -> bool:
        """Extend the lease on a delivery; False when ``owner`` no longer holds it."""

    @abc.abstractmethod
    async def release_delivery(self, claim: DeliveryRecord, owner: str) -> bool:
        """Give a claimed delivery back untouched (shutting down); the try does not count."""

    @abc.abstractmethod
    async def get_delivery(self, delivery_id: str) -> DeliveryRecord | None:
        ...

    @abc.abstractmethod
    async def enqueue_job(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        delay: float = 0.0,
        max_attempts: int | None = None,
        origin: str | None = None,
    ) -> EnqueueResult:
        """Enqueue one job (outside any handler; handlers use their :class:`UnitOfWork`).

        ``key`` serialises: jobs sharing a key run one at a time, in the order enqueued
        (e.g. ``pr:owner/repo#12``). ``idempotency_key`` deduplicates for good: a second
        enqueue with the same one creates nothing and returns the first job's id.
        ``delay`` postpones the first try; ``max_attempts`` overrides the store's policy."""

    @abc.abstractmethod
    async def claim_job(
        self, owner: str, kinds: Collection[str], lease_seconds: float
    ) -> Job | None:
        """Take the oldest ready job of one of ``kinds`` whose key is free, under a lease."""

    @abc.abstractmethod
    async def complete_job(self, job: Job, owner: str, unit: UnitOfWork | None = None) -> None:
        """Mark a claimed job done, atomically with the jobs its handler enqueued.

        Raises :class:`LeaseLost` (and writes nothing) when ``owner`` no longer holds it."""

    @abc.abstractmethod
    async def fail_job(self, job: Job, owner: str, error: str, *, retry: bool = True) -> JobStatus:
        """Record a failed try: back to pending after a back-off, or failed for good when
        ``retry`` is False or the job has had its attempts. Raises :class:`LeaseLost`."""

    @abc.abstractmethod
    async def renew_job(self, job: Job, owner: str, lease_seconds: float) -> bool:
        """Extend the lease on a running job; False when ``owner`` no longer holds it."""

    @abc.abstractmethod
    async def release_job(self, job: Job, owner: str) -> bool:
        """Give a running job back untouched (shutting down); the try does not count."""

    @abc.abstractmethod
    async def get_job(self, job_id: int) -> Job | None:
        ...

    @abc.abstractmethod
    async def list_jobs(
        self,
        *,
        kind: str | None = None,
        key: str | None = None,
        status: JobStatus | None = None,
    ) -> list[Job]:
        """Jobs matching every filter given, oldest first."""

    @abc.abstractmethod
    async def recover_expired(self) -> tuple[int, int]:
        """Put back what a crashed process held (expired leases): (deliveries, jobs) freed.

        Claims do this too; start-up calls it to log what a crash left behind."""

    @abc.abstractmethod
    async def counts(self) -> QueueCounts:
        """Deliveries and jobs per unfinished (or failed) status, for health checks."""

    # -- administration (`gwi queue`, `gwi prune`) ---------------------------------------

    @abc.abstractmethod
    async def list_deliveries(self, *, status: DeliveryStatus | None = None,
                              limit: int = 100) -> list[DeliveryRecord]:
        """The newest deliveries (of a status), newest first, without their bodies."""

    @abc.abstractmethod
    async def retry_job(self, job_id: int) -> bool:
        """Put a failed or cancelled job back to pending with fresh attempts; False if it
        does not exist or is not failed or cancelled."""

    @abc.abstractmethod
    async def prune(self, before: float) -> tuple[int, int]:
        """Delete deliveries and jobs that finished before ``before``: (deliveries, jobs).
        Nothing pending, running or processing is ever deleted."""
