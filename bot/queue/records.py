"""What the queue holds: deliveries and jobs, their statuses, the unit of work a handler fills,
the retry policy, and the parsing and classification of a delivery's payload."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

NOT_AN_OBJECT = "body is not a JSON object (set the webhook content type to application/json)"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified webhook delivery: what the queue stores before the request is answered."""

    delivery_id: str
    event: str
    body: bytes


class Classification(NamedTuple):
    """The fields of a payload that the queue indexes and every log line carries."""

    action: str | None
    installation_id: int | None
    repository: str | None


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StoreError(Exception):
    """The queue's database cannot be opened or used."""


class LeaseLost(Exception):
    """A worker tried to finish or renew an item it no longer holds (its lease ran out and
    another claim took it); whatever it would have written is dropped."""


@dataclass(frozen=True, slots=True)
class JobRetry:
    """How often an item is tried, and how long to wait before the next try."""

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the ``attempts``-th failed try: doubling, capped."""
        return float(min(self.max_delay, self.base_delay * 2 ** max(attempts - 1, 0)))


DEFAULT_RETRY = JobRetry()


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A job to enqueue. ``payload_json`` is the payload already serialised."""

    kind: str
    payload_json: str
    key: str | None = None
    idempotency_key: str | None = None
    delay: float = 0.0
    max_attempts: int | None = None


def job_spec(
    kind: str,
    payload: Mapping[str, Any] | None = None,
    *,
    key: str | None = None,
    idempotency_key: str | None = None,
    delay: float = 0.0,
    max_attempts: int | None = None,
) -> JobSpec:
    """Validate and serialise a job now, so a bad payload fails where it was made."""
    if not kind:
        raise ValueError("a job needs a kind")
    if delay < 0:
        raise ValueError("a job's delay cannot be negative")
    if max_attempts is not None and max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    payload_json = json.dumps(dict(payload or {}), separators=(",", ":"), sort_keys=True)
    return JobSpec(kind, payload_json, key, idempotency_key, delay, max_attempts)


@dataclass
class UnitOfWork:
    """What a handler asks for; applied atomically with marking its delivery or job finished.

    A handler that raises has its unit of work thrown away, so nothing it asked for happens
    and its retry starts clean.
    """

    _jobs: list[JobSpec] = field(default_factory=list)
    _cancellations: list[tuple[str, str | None]] = field(default_factory=list)

    def enqueue_job(
        self,
        kind: str,
        payload: Mapping[str, Any] | None = None,
        *,
        key: str | None = None,
        idempotency_key: str | None = None,
        delay: float = 0.0,
        max_attempts: int | None = None,
    ) -> None:
        """Enqueue a job when this unit commits. See :meth:`QueueStore.enqueue_job` for the fields."""
        self._jobs.append(
            job_spec(
                kind,
                payload,
                key=key,
                idempotency_key=idempotency_key,
                delay=delay,
                max_attempts=max_attempts,
            )
        )

    def cancel_pending_jobs(self, key: str, *, kind: str | None = None) -> None:
        """When this unit commits, cancel the not-yet-started jobs with ``key`` (and ``kind``).

        Cancellations apply before this unit's own enqueues, so "supersede the queued run
        for this PR with a new one" is one unit: cancel, then enqueue.
        """
        self._cancellations.append((key, kind))

    @property
    def jobs(self) -> tuple[JobSpec, ...]:
        return tuple(self._jobs)

    @property
    def cancellations(self) -> tuple[tuple[str, str | None], ...]:
        return tuple(self._cancellations)


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """A stored delivery, as claimed by a worker or looked up."""

    seq: int
    delivery_id: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    received_at: float
    body: bytes
    status: DeliveryStatus
    attempts: int
    lease_owner: str | None
    lease_expires: float | None
    handlers_done: frozenset[str]
    last_error: str | None


@dataclass(frozen=True, slots=True)
class Job:
    """A stored job, as claimed by a worker or looked up."""

    id: int
    kind: str
    key: str | None
    idempotency_key: str | None
    payload: dict[str, Any]
    status: JobStatus
    attempts: int
    max_attempts: int
    not_before: float
    lease_owner: str | None
    lease_expires: float | None
    last_error: str | None
    origin: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    job_id: int
    created: bool  # False: a job with the same idempotency key already existed


@dataclass(frozen=True, slots=True)
class QueueCounts:
    """How many deliveries and jobs are in each unfinished or failed state."""

    deliveries: dict[str, int]
    jobs: dict[str, int]
    # Seconds since the oldest pending delivery arrived and the oldest pending job was made.
    oldest_pending_s: dict[str, float | None] = field(default_factory=dict)


def parse_payload(body: bytes) -> dict[str, Any]:
    """The delivery's JSON object; ValueError when the body is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"{NOT_AN_OBJECT}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(NOT_AN_OBJECT)  # noqa: TRY004 - one error for every non-object
    return data


def classify(payload: Mapping[str, Any]) -> Classification:
    """The action, installation id and repository full name of a payload, when present.

    Payloads are tolerated as they come: a field of an unexpected type counts as absent.
    """
    action = payload.get("action")
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    return Classification(
        action if isinstance(action, str) else None,
        installation_id
        if isinstance(installation_id, int) and not isinstance(installation_id, bool)
        else None,
        full_name if isinstance(full_name, str) else None,
    )


@dataclass(frozen=True)
class IndexedRun:
    """One pull-request run in the PR index."""

    run_id: str
    repository: str
    pr: int
    head_sha: str
    base_sha: str
    check_run_id: int | None
    created_at: float
    finished: bool  # GitHub shows the run's final check-run: nothing more to publish
    published_state: str | None = None  # the stop state last shown in full (check and comment)
