"""Deliveries GitHub could not make while gwi was down are redelivered at start-up.

The fake GitHub keeps the App's delivery log, as GitHub does; the test plays GitHub's part of
a redelivery (sending the logged payload again, same delivery id) when gwi asks for one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.queue.workers import WorkerConfig
from bot.schemas.state import Outcome
from bot.server.app import RECOVERED, STORE, WORKERS, create_app
from bot.settings import load_settings
from tests.conftest import WEBHOOK_SECRET, signed_headers
from tests.github_harness import Bot

BASE = {"settings.py": "LIMIT = 10\n", "README.md": "hello\n"}


async def restart(bot: Bot, aiohttp_client: Any, github_settings: Any, data_dir: Path,
                  **app_options: Any) -> Bot:
    """Stop the server (its store closes), then start another on the same data dir."""
    await bot.client.close()
    settings = load_settings({"GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                              "GWI_DATA_DIR": str(data_dir)})
    settings = settings.model_copy(update={"github": github_settings})
    app = create_app(settings, worker_config=WorkerConfig(
        lease_seconds=30, poll_interval=0.05), **app_options)
    return Bot(client=await aiohttp_client(app), fake=bot.fake, remote=bot.remote, runs=bot.runs)


async def play_redeliveries(bot: Bot, served: set[int]) -> None:
    """GitHub's side of a redelivery: send the logged payload again, with its delivery id."""
    for delivery in list(bot.fake.deliveries):
        if delivery.redelivery and delivery.id not in served:
            served.add(delivery.id)
            body = json.dumps(delivery.payload).encode()
            response = await bot.client.post(
                "/webhook", data=body,
                headers=signed_headers(body, delivery.event, delivery.guid))
            delivery.status_code = response.status


async def settle(bot: Bot, served: set[int]) -> None:
    """Let the start-up recovery end (playing GitHub's redeliveries as it asks for them), then
    the workers finish: waits on the recovery's own end, never on the clock."""
    recovered = bot.client.app[RECOVERED]
    async with asyncio.timeout(60):
        while not recovered.is_set():
            await play_redeliveries(bot, served)
            await asyncio.sleep(0.02)
    await play_redeliveries(bot, served)
    await bot.idle()


async def test_a_pull_request_opened_during_an_outage_gets_its_run(
    make_bot: Callable[..., Any], aiohttp_client: Any, github_settings: Any, tmp_path: Path
) -> None:
    bot = await make_bot(BASE)
    fake = bot.fake
    bot.remote.commit("feature", {"settings.py": "LIMIT = 20\n"}, "feature", new_branch=True)
    bot.remote.commit("main", {"settings.py": "LIMIT = 30\n"}, "main")
    bot.open_pull(7, "feature")
    # Before the outage: a delivery that reached gwi (GitHub logged it as delivered).
    ping = {"zen": "Keep it logically awesome.", "hook_id": 1}
    assert await bot.deliver("ping", ping, delivery_id="before-outage") == 200
    fake.add_delivery("ping", guid="before-outage", status_code=200,
                      payload={**ping, "installation": {"id": bot.installation}})
    # A failure long before the last delivery gwi stored: not gwi's to replay.
    fake.add_delivery("ping", guid="ancient", status_code=502,
                      delivered_at=fake.clock() - timedelta(days=2), payload=ping)

    # The outage: GitHub tries to deliver the PR being opened and gets no answer.
    await bot.client.close()
    opened = {**bot.pull_payload(7, "opened"), "installation": {"id": bot.installation}}
    lost = fake.add_delivery("pull_request", "opened", guid="opened-while-down",
                             status_code=502, installation_id=bot.installation, payload=opened)
    fake.add_delivery("pull_request", "opened", guid="opened-while-down", status_code=504,
                      installation_id=bot.installation, payload=opened)  # GitHub tried twice
    assert bot.check_runs() == []

    served: set[int] = set()
    bot = await restart(bot, aiohttp_client, github_settings, tmp_path / "data")
    await settle(bot, served)
    assert len(fake.redeliveries) == 1  # one guid, asked for once, from its newest attempt
    [asked] = [d for d in fake.deliveries if d.id == fake.redeliveries[0]]
    assert asked.guid == lost.guid
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.NEEDS_HUMAN and view.ctx.head.sha == opened[
        "pull_request"]["head"]["sha"]
    [check] = bot.check_runs()
    assert check.status == "completed"
    stored = await bot.client.app[STORE].get_delivery("opened-while-down")
    assert stored is not None and stored.status.value == "done"

    # Another start-up finds nothing more to ask for, and starts no second run.
    bot = await restart(bot, aiohttp_client, github_settings, tmp_path / "data")
    await settle(bot, served)
    assert len(fake.redeliveries) == 1 and len(bot.views()) == 1 and len(bot.check_runs()) == 1


async def test_a_delivery_log_that_cannot_be_read_does_not_stop_the_server(
    make_bot: Callable[..., Any], aiohttp_client: Any, github_settings: Any, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = await make_bot(BASE)
    assert await bot.deliver("ping", {"zen": "hi", "hook_id": 1}) == 200
    bot.fake.fault("apps/list-webhook-deliveries", status=500, times=10)
    async def no_wait(seconds: float) -> None:
        await asyncio.sleep(0)

    with caplog.at_level(logging.WARNING):
        bot = await restart(bot, aiohttp_client, github_settings, tmp_path / "data",
                            github_options={"sleep": no_wait})
        await settle(bot, set())
    assert (await bot.client.get("/healthz")).status == 200
    assert bot.fake.redeliveries == []
    [failed] = [r for r in caplog.records if r.getMessage() == "webhooks.recovery_failed"]
    assert failed.exc_info is not None
    assert "GET /app/hook/deliveries" in str(failed.exc_info[1])
    assert "failed after 5 attempts (500)" in str(failed.exc_info[1])
    assert await bot.deliver("ping", {"zen": "still here", "hook_id": 1}) == 200


async def test_more_missed_deliveries_than_one_round_asks_for_come_in_later_rounds(
    make_bot: Callable[..., Any], aiohttp_client: Any, github_settings: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.server import app as app_module
    from bot.server import recovery

    monkeypatch.setattr(recovery, "MAX_REDELIVERIES", 1)
    monkeypatch.setattr(app_module, "RECOVERY_ROUND_SECONDS", 0.2)
    bot = await make_bot(BASE)
    ping = {"zen": "Keep it logically awesome.", "hook_id": 1}
    assert await bot.deliver("ping", ping, delivery_id="before-outage") == 200
    await bot.client.close()
    for n in range(3):
        bot.fake.add_delivery("ping", guid=f"missed-{n}", status_code=502,
                              payload={**ping, "zen": f"missed {n}"})
    served: set[int] = set()
    bot = await restart(bot, aiohttp_client, github_settings, tmp_path / "data")
    await settle(bot, served)
    # one per round, oldest first, each asked for once, and all three stored
    asked = [d.guid for i in bot.fake.redeliveries for d in bot.fake.deliveries if d.id == i]
    assert asked == ["missed-0", "missed-1", "missed-2"]
    store = bot.client.app[STORE]
    for n in range(3):
        stored = await store.get_delivery(f"missed-{n}")
        assert stored is not None and stored.status.value == "done"


async def test_a_listing_cut_at_its_bound_does_not_move_the_marker(
    make_bot: Callable[..., Any],
) -> None:
    """More deliveries since the last look than gwi lists: the ones it did not see must be
    looked for again, so the point it looks back to stays where it was."""
    from bot.server.recovery import recover_missed_deliveries

    bot = await make_bot(BASE)
    assert await bot.deliver("ping", {"zen": "z", "hook_id": 1}, delivery_id="seen") == 200
    store = bot.client.app[STORE]
    before = await store.call(lambda c: c.execute("SELECT MAX(received_at) FROM deliveries")
                              .fetchone()[0])
    for n in range(3):
        bot.fake.add_delivery("ping", guid=f"later-{n}", status_code=200,
                              delivered_at=bot.fake.clock() + timedelta(seconds=n + 1),
                              payload={"zen": "z"})
    gh = bot.client.app[WORKERS]._services["gh"]  # the running server's GitHub service
    report = await recover_missed_deliveries(gh.app, store, max_listed=2)
    assert report.truncated and report.listed == 2
    marker = await store.call(lambda c: c.execute(
        "SELECT seen_until FROM webhook_marker WHERE id = 1").fetchone())
    assert marker is None or marker[0] <= before
