"""A storm: 1,000 signed deliveries, 10% redeliveries, 50 at a time; none lost or doubled."""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from gidgethub import routing, sansio

from bot.queue.records import UnitOfWork
from bot.queue.schema import DB_FILENAME
from bot.queue.workers import WorkerConfig
from bot.server.app import create_app
from bot.settings import load_settings
from tests.conftest import WEBHOOK_SECRET, signed_headers

DISTINCT = 900
DUPLICATES = 100
CONCURRENCY = 50


async def test_a_storm_with_redeliveries_processes_each_delivery_exactly_once(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> None:
    handled: Counter[str] = Counter()
    router = routing.Router()

    @router.register("issues")
    async def count(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
        handled[event.delivery_id] += 1
        unit.enqueue_job("seen", {"delivery": event.delivery_id})

    settings = load_settings({"GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET})
    app = create_app(settings, router=router, worker_config=WorkerConfig(poll_interval=0.05))
    client = await aiohttp_client(app)

    rng = random.Random(8)
    ids = [f"storm-{n}" for n in range(DISTINCT)]
    sends = ids + rng.choices(ids, k=DUPLICATES)
    rng.shuffle(sends)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def send(delivery_id: str) -> int:
        body = json.dumps({"action": "opened", "issue": {"number": len(delivery_id)}}).encode()
        async with gate:
            response = await client.post(
                "/webhook", data=body, headers=signed_headers(body, "issues", delivery_id)
            )
            return response.status

    statuses = Counter(await asyncio.gather(*(send(d) for d in sends)))
    assert statuses == {202: DISTINCT, 200: DUPLICATES}

    deadline = time.monotonic() + 30
    while sum(handled.values()) < DISTINCT:
        assert time.monotonic() < deadline, f"only {len(handled)} processed"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # room for any (wrong) second processing to show up
    assert len(handled) == DISTINCT and set(handled.values()) == {1}
    with sqlite3.connect(settings.data_dir / DB_FILENAME) as conn:
        assert conn.execute("SELECT status, COUNT(*) FROM deliveries GROUP BY 1").fetchall() == [
            ("done", DISTINCT)
        ]
        assert conn.execute("SELECT COUNT(DISTINCT payload), COUNT(*) FROM jobs").fetchone() == (
            DISTINCT,
            DISTINCT,
        )
