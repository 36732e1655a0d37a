"""The worker tasks: job registry, per-key serialisation, leases kept and lost, shutdown; against
both backends (SQLite and a real PostgreSQL server), with PostgreSQL's wake-ups across stores."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from gidgethub import routing, sansio

from bot import logs
from bot.queue.intake_priority import IntakePriority
from bot.queue.records import Delivery, DeliveryStatus, Job, JobRetry, JobStatus, UnitOfWork
from bot.queue.workers import (
    JobHandler,
    PermanentJobError,
    WorkerConfig,
    Workers,
    handler_name,
)
from tests.queue_backends import BACKENDS, AnyStore, execute, open_store
from tests.support import wait_until

FAST = WorkerConfig(
    delivery_workers=2, job_workers=3, lease_seconds=5, poll_interval=0.02, shutdown_grace=2
)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AnyStore]:
    s = open_store(
        request,
        tmp_path,
        delivery_retry=JobRetry(max_attempts=2, base_delay=0.01),
        job_retry=JobRetry(max_attempts=3, base_delay=0.01),
    )
    yield s
    await asyncio.to_thread(s.close)




def jobs_in(store: AnyStore, *statuses: JobStatus) -> Callable[[], Any]:
    async def check() -> bool:
        jobs = await store.list_jobs()
        return bool(jobs) and all(job.status in statuses for job in jobs)

    return check


async def run_workers(
    store: AnyStore,
    job_handlers: dict[str, JobHandler],
    config: WorkerConfig = FAST,
    router: routing.Router | None = None,
) -> Workers:
    workers = Workers(store, router or routing.Router(), job_handlers, config)
    await workers.start()
    return workers


async def test_registered_kinds_run_and_their_follow_ups_commit_with_them(store: AnyStore) -> None:
    ran: list[tuple[str, dict[str, Any]]] = []

    async def plan(job: Job, unit: UnitOfWork, **_: Any) -> None:
        ran.append(("plan", job.payload))
        unit.enqueue_job("review", {"after": job.id})

    async def review(job: Job, unit: UnitOfWork, **_: Any) -> None:
        ran.append(("review", job.payload))

    first = await store.enqueue_job("plan", {"pr": 1})
    workers = await run_workers(store, {"plan": plan, "review": review})
    try:
        await wait_until(lambda: _count_done(store, 2))
    finally:
        await workers.stop()
    assert ran == [("plan", {"pr": 1}), ("review", {"after": first.job_id})]


async def _count_done(store: AnyStore, n: int) -> bool:
    return len(await store.list_jobs(status=JobStatus.DONE)) == n


async def test_jobs_sharing_a_key_never_overlap(store: AnyStore) -> None:
    running: dict[str, int] = {}
    overlaps: list[str] = []
    order: list[int] = []

    async def run(job: Job, unit: UnitOfWork, **_: Any) -> None:
        key = job.key or "-"
        running[key] = running.get(key, 0) + 1
        if running[key] > 1:
            overlaps.append(key)
        order.append(job.payload["n"])
        await asyncio.sleep(0.01)
        running[key] -= 1

    for n in range(12):
        await store.enqueue_job("run", {"n": n}, key=f"pr:o/r#{n % 2}")
    workers = await run_workers(store, {"run": run})
    try:
        await wait_until(lambda: _count_done(store, 12))
    finally:
        await workers.stop()
    assert overlaps == []
    assert [n for n in order if n % 2 == 0] == [0, 2, 4, 6, 8, 10]  # in order, per key
    assert [n for n in order if n % 2 == 1] == [1, 3, 5, 7, 9, 11]


async def test_a_failing_job_is_retried_then_failed_and_a_permanent_one_at_once(
    store: AnyStore,
) -> None:
    tries: dict[str, int] = {"flaky": 0, "broken": 0, "refused": 0}

    async def flaky(job: Job, unit: UnitOfWork, **_: Any) -> None:
        tries["flaky"] += 1
        if tries["flaky"] < 3:
            raise ConnectionError("try again")

    async def broken(job: Job, unit: UnitOfWork, **_: Any) -> None:
        tries["broken"] += 1
        unit.enqueue_job("never")
        raise ValueError("always")

    async def refused(job: Job, unit: UnitOfWork, **_: Any) -> None:
        tries["refused"] += 1
        raise PermanentJobError("no point retrying")

    for kind in tries:
        await store.enqueue_job(kind)
    workers = await run_workers(store, {"flaky": flaky, "broken": broken, "refused": refused})
    try:
        await wait_until(jobs_in(store, JobStatus.DONE, JobStatus.FAILED))
    finally:
        await workers.stop()
    assert tries == {"flaky": 3, "broken": 3, "refused": 1}
    status = {job.kind: (job.status, job.last_error) for job in await store.list_jobs()}
    assert status == {
        "flaky": (JobStatus.DONE, "ConnectionError: try again"),
        "broken": (JobStatus.FAILED, "ValueError: always"),
        "refused": (JobStatus.FAILED, "no point retrying"),
    }


async def test_a_long_job_keeps_its_lease_alive(store: AnyStore) -> None:
    config = WorkerConfig(job_workers=2, lease_seconds=0.15, poll_interval=0.02)
    runs = 0

    async def slow(job: Job, unit: UnitOfWork, **_: Any) -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(0.6)  # four leases long

    await store.enqueue_job("slow")
    workers = await run_workers(store, {"slow": slow}, config)
    try:
        await wait_until(jobs_in(store, JobStatus.DONE))
    finally:
        await workers.stop()
    assert runs == 1


async def test_a_worker_that_lost_its_lease_stops_and_commits_nothing(store: AnyStore) -> None:
    config = WorkerConfig(job_workers=1, lease_seconds=0.3, poll_interval=0.02)
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def slow(job: Job, unit: UnitOfWork, **_: Any) -> None:
        unit.enqueue_job("follow-up")
        started.set()
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job = (await store.enqueue_job("slow")).job_id
    workers = await run_workers(store, {"slow": slow}, config)
    try:
        await started.wait()
        # Another worker took the job over (as after this one stalled past its lease).
        await asyncio.to_thread(
            execute, store, "UPDATE jobs SET lease_owner = 'someone-else' WHERE id = ?", (job,))
        async with asyncio.timeout(5):
            await cancelled.wait()
    finally:
        await workers.stop()
    [stored] = await store.list_jobs()
    assert stored.status is JobStatus.RUNNING and stored.lease_owner == "someone-else"


async def test_shutdown_waits_for_short_work_and_hands_long_work_back(store: AnyStore) -> None:
    config = WorkerConfig(job_workers=2, poll_interval=0.02, shutdown_grace=0.2)
    started: set[str] = set()

    async def work(job: Job, unit: UnitOfWork, **_: Any) -> None:
        started.add(job.kind)
        await asyncio.sleep(0.1 if job.kind == "short" else 30)

    await store.enqueue_job("short")
    await store.enqueue_job("long")
    workers = await run_workers(store, {"short": work, "long": work}, config)
    await wait_until(lambda: _true(started == {"short", "long"}))
    await workers.stop()
    status = {job.kind: (job.status, job.attempts) for job in await store.list_jobs()}
    assert status == {"short": (JobStatus.DONE, 1), "long": (JobStatus.PENDING, 0)}


async def _true(value: bool) -> bool:
    return value


async def test_a_stuck_event_handler_times_out_and_counts_as_failed(store: AnyStore) -> None:
    router = routing.Router()

    @router.register("issues")
    async def stuck(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
        await asyncio.sleep(30)

    config = WorkerConfig(delivery_workers=1, handler_timeout=0.05, poll_interval=0.02)
    await store.insert_delivery(Delivery("d-1", "issues", b"{}"))
    workers = await run_workers(store, {}, config, router)

    async def failed() -> bool:
        stored = await store.get_delivery("d-1")
        return stored is not None and stored.status is DeliveryStatus.FAILED

    try:
        await wait_until(failed)
    finally:
        await workers.stop()
    stored = await store.get_delivery("d-1")
    assert stored is not None and "TimeoutError" in (stored.last_error or "")


async def test_a_body_that_does_not_parse_fails_at_once_instead_of_the_worker(
    store: AnyStore,
) -> None:
    calls: list[str] = []
    router = routing.Router()

    @router.register("issues")
    async def handler(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
        calls.append(event.delivery_id)

    for n, body in enumerate([b"{not json}", b"[1]", b"{\xff}", b'{"ok": true}']):
        await store.insert_delivery(Delivery(f"d-{n}", "issues", body))
    workers = Workers(store, router, {}, FAST)
    outcomes = [await workers.run_delivery_once("w") for _ in range(4)]
    assert outcomes == [DeliveryStatus.FAILED] * 3 + [DeliveryStatus.DONE]
    assert calls == ["d-3"]
    for n in range(3):
        stored = await store.get_delivery(f"d-{n}")
        assert stored is not None and stored.attempts == 1
        assert "body is not a JSON object" in (stored.last_error or "")


async def test_the_worker_records_what_the_payload_is_about(store: AnyStore) -> None:
    body = json.dumps(
        {"action": "opened", "installation": {"id": 5}, "repository": {"full_name": "o/r"}}
    ).encode()
    await store.insert_delivery(Delivery("d-1", "pull_request", body))
    workers = Workers(store, routing.Router(), {}, FAST)
    assert await workers.run_delivery_once("w") is DeliveryStatus.DONE
    stored = await store.get_delivery("d-1")
    assert stored is not None
    assert (stored.action, stored.installation_id, stored.repository) == ("opened", 5, "o/r")


async def test_a_jobs_log_lines_lead_back_to_the_delivery_that_made_it(store: AnyStore) -> None:
    """The webhook's handler enqueues a job; every line the job logs carries the delivery it
    came from and the installation it works for."""
    router = routing.Router()

    @router.register("pull_request", action="opened")
    async def opened(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
        unit.enqueue_job("pr.run", {"installation_id": 5, "number": 7})

    seen: list[dict[str, object]] = []

    async def run(job: Job, unit: UnitOfWork, **_: Any) -> None:
        seen.append(dict(logs.current_context()))

    body = json.dumps({"action": "opened", "installation": {"id": 5}}).encode()
    await store.insert_delivery(Delivery("d-7", "pull_request", body))
    workers = Workers(store, router, {"pr.run": run}, FAST)
    assert await workers.run_delivery_once("w") is DeliveryStatus.DONE
    assert await workers.run_job_once("w") is JobStatus.DONE
    [context] = seen
    assert context["job_origin"] == "delivery:d-7" and context["installation_id"] == 5
    assert context["job_kind"] == "pr.run"


async def test_start_up_takes_up_what_a_crash_left(store: AnyStore) -> None:
    await store.insert_delivery(Delivery("d-1", "issues", b"{}"))
    assert await store.claim_delivery("crashed", lease_seconds=0.01) is not None
    await asyncio.sleep(0.02)
    workers = await run_workers(store, {})

    async def done() -> bool:
        stored = await store.get_delivery("d-1")
        return stored is not None and stored.status is DeliveryStatus.DONE

    try:
        await wait_until(done)  # long before the default 60 s lease: the expired one was taken
    finally:
        await workers.stop()


def test_handler_names_are_stable_and_qualified() -> None:
    async def local(event: sansio.Event, unit: UnitOfWork) -> None:
        pass

    assert handler_name(local) == (
        f"{__name__}.test_handler_names_are_stable_and_qualified.<locals>.local"
    )


async def test_delivery_workers_step_aside_while_a_request_is_answered() -> None:
    priority = IntakePriority()
    idle = asyncio.create_task(priority.wait(3600))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert idle.done()  # nothing in flight: no wait
    with priority.request():
        bounded = asyncio.create_task(priority.wait(0.1))
        await asyncio.sleep(0)
        assert not bounded.done()  # a request in flight: the worker steps aside...
        await asyncio.wait_for(bounded, 30)  # ...for a bounded time: work still moves

        async def finish_soon() -> None:
            await asyncio.sleep(0.05)

        with priority.request():
            waiter = asyncio.create_task(priority.wait(5.0))
            await finish_soon()
        assert not waiter.done()  # the outer request is still in flight
    await asyncio.wait_for(waiter, 1.0)  # all answered: the worker goes on at once
