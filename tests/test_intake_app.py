"""POST /webhook and GET /healthz through a real aiohttp server: refuse, dedupe, persist, answer."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from gidgethub import routing, sansio

from bot.logs import KeyValueFormatter
from bot.queue.records import JobRetry, UnitOfWork
from bot.queue.schema import DB_FILENAME
from bot.queue.workers import WorkerConfig
from bot.server.app import create_app
from bot.settings import Settings, load_settings
from tests.conftest import WEBHOOK_SECRET, sign, signed_headers
from tests.support import wait_until

MakeClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
FAST = WorkerConfig(delivery_workers=2, job_workers=1, poll_interval=0.05, lease_seconds=5)
BODY = json.dumps(
    {"action": "opened", "installation": {"id": 9}, "repository": {"full_name": "octo/repo"}}
).encode()


@pytest.fixture
def settings() -> Settings:
    return load_settings(
        {
            "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "GITHUB_WEBHOOK_SECRET_OLD": "previous-webhook-secret",
            "GWI_MAX_BODY_BYTES": 64 * 1024,
        }
    )


@pytest.fixture
def make_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    settings: Settings,
) -> MakeClient:
    async def make(**kwargs: Any) -> TestClient[web.Request, web.Application]:
        kwargs.setdefault("worker_config", FAST)
        return await aiohttp_client(create_app(settings, **kwargs))

    return make


def db_rows(settings: Settings, sql: str) -> list[tuple[Any, ...]]:
    """Read the queue as another process would: its own connection, no help from the app."""
    with sqlite3.connect(settings.data_dir / DB_FILENAME) as conn:
        return conn.execute(sql).fetchall()




def all_finished(settings: Settings) -> Callable[[], bool]:
    def check() -> bool:
        return not db_rows(
            settings, "SELECT 1 FROM deliveries WHERE status IN ('pending', 'processing')"
        )

    return check


async def post(
    client: TestClient[web.Request, web.Application],
    body: bytes = BODY,
    event: str = "issues",
    delivery_id: str = "guid-1",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/webhook", data=body, headers=headers or signed_headers(body, event, delivery_id)
    )
    return response.status, await response.json()


# -- acceptance ----------------------------------------------------------------------------


async def test_a_signed_delivery_is_accepted_persisted_and_processed(
    make_client: MakeClient, settings: Settings
) -> None:
    client = await make_client()
    assert await post(client) == (202, {"status": "accepted"})
    await wait_until(all_finished(settings))
    [row] = db_rows(
        settings,
        "SELECT delivery_id, event, action, installation_id, repository, status, attempts,"
        " encoding, body FROM deliveries JOIN delivery_bodies USING (delivery_id)",
    )
    assert row[:-1] == ("guid-1", "issues", "opened", 9, "octo/repo", "done", 1, "zlib")
    assert zlib.decompress(row[-1]) == BODY


async def test_the_row_is_committed_before_the_202(
    make_client: MakeClient, settings: Settings
) -> None:
    client = await make_client(run_workers=False)
    status, _ = await post(client)
    assert status == 202
    # Read right after the answer, from a separate connection: the row is already on disk.
    assert db_rows(settings, "SELECT delivery_id, status FROM deliveries") == [
        ("guid-1", "pending")
    ]


async def test_a_redelivery_answers_200_and_starts_nothing(
    make_client: MakeClient, settings: Settings
) -> None:
    calls: list[str] = []
    router = routing.Router()

    @router.register("issues")
    async def count(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
        calls.append(event.delivery_id)

    client = await make_client(router=router)
    assert (await post(client))[0] == 202
    await wait_until(all_finished(settings))
    assert await post(client) == (200, {"status": "duplicate"})
    await wait_until(all_finished(settings))  # a duplicate is never stored, so never handled
    assert calls == ["guid-1"]
    assert db_rows(settings, "SELECT COUNT(*) FROM deliveries") == [(1,)]


async def test_a_ping_is_answered_200_and_logged_by_its_handler(
    make_client: MakeClient, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    client = await make_client()
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 5}).encode()
    assert await post(client, body, "ping", "ping-1") == (200, {"status": "accepted"})
    await wait_until(all_finished(settings))
    [record] = [r for r in caplog.records if r.getMessage() == "app.ping"]
    line = KeyValueFormatter().format(record)
    assert "delivery_id=ping-1 event=ping" in line and "hook_id=5" in line


async def test_the_old_secret_is_accepted_during_rotation(make_client: MakeClient) -> None:
    client = await make_client(run_workers=False)
    headers = signed_headers(BODY, "issues", "guid-1", secret="previous-webhook-secret")
    assert (await post(client, headers=headers))[0] == 202


# -- refusals ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda h: h.pop("X-Hub-Signature-256"), id="missing"),
        pytest.param(lambda h: h.update({"X-Hub-Signature-256": "sha256=00"}), id="malformed"),
        pytest.param(lambda h: h.update({"X-Hub-Signature-256": sign(b"{}")}), id="mismatch"),
        pytest.param(
            lambda h: h.update({"X-Hub-Signature-256": sign(BODY, "wrong")}), id="wrong-secret"
        ),
        pytest.param(
            lambda h: (
                h.update({"X-Hub-Signature": "sha1=" + "0" * 40, "X-Hub-Signature-256": ""})
                or h.pop("X-Hub-Signature-256")
            ),
            id="sha1-only",
        ),
    ],
)
async def test_an_unsigned_or_badly_signed_request_is_401_and_stores_nothing(
    make_client: MakeClient, settings: Settings, mangle: Callable[[dict[str, str]], object]
) -> None:
    client = await make_client(run_workers=False)
    headers = signed_headers(BODY, "issues", "guid-1")
    mangle(headers)
    status, answer = await post(client, headers=headers)
    assert status == 401 and "error" in answer
    assert db_rows(settings, "SELECT COUNT(*) FROM deliveries") == [(0,)]


@pytest.mark.parametrize(
    ("body", "drop"),
    [
        (BODY, "X-GitHub-Event"),
        (BODY, "X-GitHub-Delivery"),
        (b"[]", None),
        (b"{broken", None),
        (b"payload=%7B%7D", None),
    ],
)
async def test_a_signed_but_malformed_delivery_is_400_and_stores_nothing(
    make_client: MakeClient, settings: Settings, body: bytes, drop: str | None
) -> None:
    client = await make_client(run_workers=False)
    headers = signed_headers(body, "issues", "guid-1")
    if drop:
        del headers[drop]
    status, _ = await post(client, body, headers=headers)
    assert status == 400
    assert db_rows(settings, "SELECT COUNT(*) FROM deliveries") == [(0,)]


async def test_a_signed_body_that_only_looks_like_an_object_fails_in_the_worker(
    make_client: MakeClient, settings: Settings
) -> None:
    client = await make_client()
    assert (await post(client, b"{not json}"))[0] == 202
    await wait_until(all_finished(settings))
    [(status, attempts, error)] = db_rows(
        settings, "SELECT status, attempts, last_error FROM deliveries"
    )
    assert (status, attempts) == ("failed", 1)
    assert error.startswith("body is not a JSON object")


async def test_an_oversized_body_is_413_by_its_length_without_reading_it(
    make_client: MakeClient, settings: Settings
) -> None:
    client = await make_client(run_workers=False)
    read = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal read
        for _ in range(1024):  # 64 MiB offered; the server answers before taking it all
            read += 1
            yield b"x" * 65536

    big = settings.server.max_body_bytes + 1
    headers = signed_headers(b"", "issues", "guid-1") | {"Content-Length": str(big * 1024)}
    response = await client.post("/webhook", data=body(), headers=headers)
    assert response.status == 413
    assert read < 1024
    assert db_rows(settings, "SELECT COUNT(*) FROM deliveries") == [(0,)]


async def test_an_oversized_chunked_body_is_413_once_it_passes_the_limit(
    make_client: MakeClient, settings: Settings
) -> None:
    client = await make_client(run_workers=False)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * settings.server.max_body_bytes

    headers = signed_headers(b"", "issues", "guid-1")
    response = await client.post("/webhook", data=body(), headers=headers)
    assert response.status == 413
    assert db_rows(settings, "SELECT COUNT(*) FROM deliveries") == [(0,)]


async def test_a_body_exactly_at_the_limit_is_accepted(
    make_client: MakeClient, settings: Settings
) -> None:
    client = await make_client(run_workers=False)
    body = json.dumps({"pad": ""}).encode()
    body = json.dumps({"pad": " " * (settings.server.max_body_bytes - len(body))}).encode()
    assert len(body) == settings.server.max_body_bytes
    assert (await post(client, body))[0] == 202


async def test_only_post_is_allowed_on_the_webhook(make_client: MakeClient) -> None:
    client = await make_client(run_workers=False)
    assert (await client.get("/webhook")).status == 405


# -- health ---------------------------------------------------------------------------------


async def test_healthz_reports_the_queue_depth(make_client: MakeClient, settings: Settings) -> None:
    client = await make_client(run_workers=False)
    for n in range(3):
        await post(client, delivery_id=f"guid-{n}")
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {
        "status": "ok",
        "database": f"sqlite:{settings.data_dir / DB_FILENAME}",
        "deliveries": {"pending": 3, "processing": 0, "failed": 0},
        "jobs": {"pending": 0, "running": 0, "failed": 0},
    }


# -- workers behind the intake ---------------------------------------------------------------


async def test_a_failing_handler_neither_skips_the_others_nor_repeats_them(
    make_client: MakeClient, settings: Settings
) -> None:
    calls: list[str] = []
    router = routing.Router()

    @router.register("issues")
    async def enqueue(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
        calls.append("enqueue")
        unit.enqueue_job("run", {"delivery": event.delivery_id})

    @router.register("issues", action="opened")
    async def explode(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
        calls.append("explode")
        unit.enqueue_job("never")
        raise RuntimeError("boom")

    @router.register("issues")
    async def zz_last(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
        calls.append("last")

    client = await make_client(
        router=router, delivery_retry=JobRetry(max_attempts=3, base_delay=0.01)
    )
    await post(client)
    await wait_until(all_finished(settings))
    # Each good handler ran once; the bad one was tried three times, then the delivery failed.
    assert sorted(calls) == ["enqueue", "explode", "explode", "explode", "last"]
    [(status, attempts, error)] = db_rows(
        settings, "SELECT status, attempts, last_error FROM deliveries"
    )
    assert (status, attempts) == ("failed", 3)
    assert "explode: RuntimeError: boom" in error
    assert db_rows(settings, "SELECT kind, payload FROM jobs") == [("run", '{"delivery":"guid-1"}')]


async def test_services_reach_the_handlers(make_client: MakeClient, settings: Settings) -> None:
    seen: list[object] = []
    router = routing.Router()

    @router.register("issues")
    async def handler(event: sansio.Event, unit: UnitOfWork, *, github: object, **_: Any) -> None:
        seen.append(github)

    client = await make_client(router=router, services={"github": "the-client"})
    await post(client)
    await wait_until(all_finished(settings))
    assert seen == ["the-client"]


async def test_jobs_enqueued_by_handlers_run_in_the_job_workers(
    make_client: MakeClient, settings: Settings
) -> None:
    done = asyncio.Event()
    router = routing.Router()

    @router.register("issues")
    async def handler(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
        unit.enqueue_job("run", {"delivery": event.delivery_id}, key="pr:octo/repo#1")

    async def run(job: Any, unit: UnitOfWork, **_: Any) -> None:
        assert job.payload == {"delivery": "guid-1"}
        done.set()

    client = await make_client(router=router, job_handlers={"run": run})
    await post(client)
    async with asyncio.timeout(10):
        await done.wait()
    await wait_until(lambda: db_rows(settings, "SELECT status FROM jobs") == [("done",)])


async def test_a_slow_handler_does_not_slow_the_intake(
    make_client: MakeClient, settings: Settings
) -> None:
    router = routing.Router()

    entered, release = asyncio.Event(), asyncio.Event()

    @router.register("issues")
    async def slow(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
        entered.set()
        await release.wait()

    config = WorkerConfig(delivery_workers=2, poll_interval=0.05, shutdown_grace=0.05)
    client = await make_client(router=router, worker_config=config)
    await post(client, delivery_id="first")
    await entered.wait()  # the workers are now busy in the slow handler
    for n in range(20):
        assert (await post(client, delivery_id=f"more-{n}"))[0] == 202
    assert not release.is_set()  # every answer came while the handler was still stuck
    assert (await client.get("/healthz")).status == 200
    release.set()


def test_serving_needs_a_secret(tmp_path: Path) -> None:
    from bot.errors import GwiError

    with pytest.raises(GwiError, match="GITHUB_WEBHOOK_SECRET"):
        create_app(load_settings({"GWI_DATA_DIR": str(tmp_path)}))


async def test_a_locked_database_is_answered_503_well_within_githubs_timeout(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    settings: Settings,
) -> None:
    """Issue 17, item 8: 503 came only after 20 s, past GitHub's 10 s, so GitHub recorded a
    timeout; the bound is GWI_INTAKE_TIMEOUT (5 s by default, 0.5 s here)."""
    quick = settings.model_copy(update={"server": settings.server.model_copy(
        update={"intake_timeout": 0.5})})
    client = await aiohttp_client(create_app(quick, run_workers=False))
    assert (await post(client, delivery_id="before"))[0] == 202
    locker = sqlite3.connect(settings.data_dir / DB_FILENAME, timeout=0)
    locker.execute("BEGIN EXCLUSIVE")  # another process holds the database
    try:
        status, body = await asyncio.wait_for(post(client, delivery_id="during"), 8)
        assert status == 503 and "did not answer in time" in body["error"]
    finally:
        locker.rollback()
        locker.close()
    assert (await client.get("/healthz")).status == 200
