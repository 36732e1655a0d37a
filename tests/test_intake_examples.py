"""Every real example payload GitHub documents, signed and posted, is taken in and processed."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.queue.schema import DB_FILENAME
from bot.queue.workers import WorkerConfig
from bot.server.app import create_app
from bot.settings import load_settings
from tests.conftest import WEBHOOK_SECRET, signed_headers


async def test_all_329_examples_answer_2xx_and_process_without_error(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    webhook_examples: list[tuple[str, dict[str, Any]]],
) -> None:
    settings = load_settings({"GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET})
    config = WorkerConfig(poll_interval=0.05)
    client = await aiohttp_client(create_app(settings, worker_config=config))
    statuses: dict[int, list[str]] = {}
    for n, (event, payload) in enumerate(webhook_examples):
        body = json.dumps(payload).encode()
        response = await client.post(
            "/webhook", data=body, headers=signed_headers(body, event, f"example-{n}")
        )
        statuses.setdefault(response.status, []).append(event)
    assert set(statuses) <= {200, 202}, {k: v[:5] for k, v in statuses.items()}
    assert statuses[200] == ["ping"] * len(statuses[200])  # pings get a plain 200
    assert len(statuses[202]) + len(statuses[200]) == 329

    def unfinished() -> int:
        with sqlite3.connect(settings.data_dir / DB_FILENAME) as conn:
            return int(
                conn.execute(
                    "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'processing')"
                ).fetchone()[0]
            )

    deadline = time.monotonic() + 30
    while unfinished():
        assert time.monotonic() < deadline, "the workers did not finish"
        await asyncio.sleep(0.05)
    with sqlite3.connect(settings.data_dir / DB_FILENAME) as conn:
        rows = conn.execute("SELECT status, attempts, COUNT(*) FROM deliveries GROUP BY 1, 2")
        assert rows.fetchall() == [("done", 1, 329)]
