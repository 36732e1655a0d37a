"""The web process on PostgreSQL (GWI_DATABASE_URL): the same intake, a database outage answered
with 503 (never a 2xx for what was not stored), and one signing key per deployment."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.errors import GwiError
from bot.queue.workers import WorkerConfig
from bot.server.app import create_app
from bot.settings import Settings, load_settings
from tests.conftest import WEBHOOK_SECRET, signed_headers
from tests.pg_server import PgServer
from tests.support import wait_until

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
FAST = WorkerConfig(delivery_workers=1, job_workers=1, poll_interval=0.05, lease_seconds=5)
BODY = json.dumps({"action": "opened", "installation": {"id": 9},
                   "repository": {"full_name": "octo/repo"}}).encode()


def pg_settings(url: str, key: Path, **more: Any) -> Settings:
    return load_settings({"GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET, "GWI_DATABASE_URL": url,
                          "GWI_SIGNING_KEY": str(key), "GWI_INTAKE_TIMEOUT": "3", **more})


def pg_rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    """Read the queue as another process would."""
    with psycopg.connect(url) as conn:
        return [tuple(row) for row in conn.execute(sql).fetchall()]


async def post(client: Client, delivery_id: str) -> int:
    response = await client.post("/webhook", data=BODY,
                                 headers=signed_headers(BODY, "issues", delivery_id))
    return response.status


async def test_an_outage_is_answered_503_and_nothing_unstored_is_acknowledged(
    aiohttp_client: MakeClient, pg_server: PgServer, pg_url: str, tmp_path: Path
) -> None:
    client = await aiohttp_client(create_app(pg_settings(pg_url, tmp_path / "key.pem"),
                                             worker_config=FAST))
    assert await post(client, "before") == 202
    health = await client.get("/healthz")
    body = await health.json()
    assert health.status == 200 and body["database"].startswith("postgresql://gwi@127.0.0.1")

    await asyncio.to_thread(pg_server.stop)
    try:
        health = await client.get("/healthz")
        assert health.status == 503
        assert (await health.json())["status"] == "unavailable"
        assert await post(client, "during") == 503
    finally:
        await asyncio.to_thread(pg_server.start)

    async def healthy() -> bool:
        return (await client.get("/healthz")).status == 200

    await wait_until(healthy, timeout=20)
    # GitHub's redelivery, once the database is back: stored now (202), or a duplicate (200)
    # when the write the 503 gave up on landed after all once the server was back.
    assert await post(client, "during") in (202, 200)
    assert await post(client, "before") == 200  # a duplicate stays one

    def all_done() -> bool:
        return pg_rows(pg_url, "SELECT delivery_id, status FROM deliveries ORDER BY seq") == [
            ("before", "done"), ("during", "done")]

    await wait_until(all_done, timeout=20)


def test_a_database_url_needs_a_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GWI_SIGNING_KEY", raising=False)
    with pytest.raises(GwiError, match="GWI_SIGNING_KEY must be set when GWI_DATABASE_URL is"):
        load_settings({"GWI_DATABASE_URL": "postgresql://gwi@db.example/gwi"})
    with pytest.raises(GwiError, match="bad setting GWI_DATABASE_URL: must be a PostgreSQL URL"):
        load_settings({"GWI_DATABASE_URL": "mysql://db.example/gwi"})
    assert load_settings({}).server.database_url is None  # SQLite stays the default


async def test_the_first_process_records_its_key_and_another_key_is_refused(
    aiohttp_client: MakeClient, pg_url: str, tmp_path: Path
) -> None:
    first = await aiohttp_client(create_app(pg_settings(pg_url, tmp_path / "a.pem"),
                                            worker_config=FAST))
    assert (await first.get("/healthz")).status == 200
    [(recorded,)] = pg_rows(pg_url, "SELECT public_key FROM signing_key")
    # Another process with the same key file starts.
    same = await aiohttp_client(create_app(pg_settings(pg_url, tmp_path / "a.pem"),
                                           worker_config=FAST))
    assert (await same.get("/healthz")).status == 200
    # A process that made its own key refuses to start, and changes nothing.
    with pytest.raises(GwiError, match="is not the one the database records"):
        await aiohttp_client(create_app(pg_settings(pg_url, tmp_path / "b.pem"),
                                        worker_config=FAST))
    assert pg_rows(pg_url, "SELECT public_key FROM signing_key") == [(recorded,)]


async def test_a_key_rotated_with_gwi_key_rotate_is_the_deployments_key_after(
    aiohttp_client: MakeClient, pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import main

    key = tmp_path / "a.pem"
    first = await aiohttp_client(create_app(pg_settings(pg_url, key), worker_config=FAST))
    assert (await first.get("/healthz")).status == 200
    [(before,)] = pg_rows(pg_url, "SELECT public_key FROM signing_key")
    monkeypatch.setenv("GWI_DATABASE_URL", pg_url)
    monkeypatch.setenv("GWI_SIGNING_KEY", str(key))
    monkeypatch.setenv("GWI_DATA_DIR", str(tmp_path / "data"))
    assert await asyncio.to_thread(main, ["key", "rotate"]) == 0
    [(after,)] = pg_rows(pg_url, "SELECT public_key FROM signing_key")
    assert after != before and before in key.with_name("a.pem.retired").read_text()
    again = await aiohttp_client(create_app(pg_settings(pg_url, key), worker_config=FAST))
    assert (await again.get("/healthz")).status == 200  # the new key is the deployment's
    # Rotating a key file that is not the deployment's changes nothing in the database.
    monkeypatch.setenv("GWI_SIGNING_KEY", str(tmp_path / "stray.pem"))
    assert await asyncio.to_thread(main, ["key", "rotate"]) == 2
    assert pg_rows(pg_url, "SELECT public_key FROM signing_key") == [(after,)]


def test_config_check_names_the_queue_without_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    assert main(["config", "check"]) == 0
    assert "queue: SQLite in the data folder" in capsys.readouterr().out
    monkeypatch.setenv("GWI_DATABASE_URL", "postgresql://gwi:hunter22@db.example:5432/gwi")
    assert main(["config", "check"]) == 0
    out = capsys.readouterr().out
    assert "queue: PostgreSQL at postgresql://gwi:***@db.example:5432/gwi" in out
    assert "hunter22" not in out
