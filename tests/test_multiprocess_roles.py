"""The process roles: what `gwi serve --web-only` and `gwi worker` serve, and what they refuse."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.cli import main
from bot.server.app import create_app
from bot.settings import load_settings
from tests.conftest import WEBHOOK_SECRET, app_env, signed_headers

ClientMaker = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("args", "command"), [(["worker"], "gwi worker"),
                                               (["serve", "--web-only"], "gwi serve --web-only")])
def test_a_split_role_without_a_database_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    args: list[str], command: str,
) -> None:
    for key, value in {**app_env(), "GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("GWI_DATABASE_URL", raising=False)
    assert main(args) == 2
    assert f"{command} needs GWI_DATABASE_URL" in capsys.readouterr().err


def test_a_worker_needs_the_app_credentials_but_no_webhook_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GWI_DATABASE_URL", "postgresql://gwi@127.0.0.1:1/none")
    for key in ("GITHUB_WEBHOOK_SECRET", "GITHUB_APP_ID", "GITHUB_PRIVATE_KEY",
                "GITHUB_PRIVATE_KEY_PATH"):
        monkeypatch.delenv(key, raising=False)
    assert main(["worker"]) == 2
    err = capsys.readouterr().err
    assert "GITHUB_APP_ID is not set" in err and "GITHUB_WEBHOOK_SECRET" not in err


async def test_a_web_only_process_stores_deliveries_and_leaves_them_to_workers(
    aiohttp_client: ClientMaker,
) -> None:
    settings = load_settings({"GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET})
    client = await aiohttp_client(create_app(settings, role="web"))
    body = json.dumps({"action": "opened", "issue": {"number": 1}}).encode()
    response = await client.post("/webhook", data=body,
                                 headers=signed_headers(body, "issues", "web-only-1"))
    assert response.status == 202
    health = await (await client.get("/healthz")).json()
    assert health["deliveries"]["pending"] == 1  # nobody here processes it
    assert health["deliveries"]["processing"] == 0


async def test_a_worker_takes_no_webhooks_and_answers_health(aiohttp_client: ClientMaker) -> None:
    settings = load_settings({})  # no webhook secret: a worker checks no signatures
    client = await aiohttp_client(create_app(settings, role="worker"))
    body = b"{}"
    response = await client.post("/webhook", data=body,
                                 headers=signed_headers(body, "issues", "worker-1"))
    assert response.status == 404
    assert (await client.get("/healthz")).status == 200


def test_the_procfile_has_a_web_and_a_worker_process() -> None:
    lines = (ROOT / "Procfile").read_text().splitlines()
    assert lines == ["web: gwi serve", "worker: gwi worker"]
