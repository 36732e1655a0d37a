"""Two workers whose reconcile loops scan at once, sharing one PostgreSQL, queue one job a run."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from bot.github.handle_reconcile import reconcile_runs
from bot.github.jobs import RECONCILE_JOB
from bot.github.service import open_service
from bot.metrics import Metrics
from bot.queue.pg_store import PostgresQueueStore
from bot.runs.signing import load_or_create_signer
from bot.settings import load_settings
from tests.conftest import GITHUB_INSTALLATION_ID


class SlowScan(PostgresQueueStore):
    """The real store, whose scan of the busy keys finishes only when the test says so: the
    other worker's whole scan fits in between, as it may when two hosts scan at once."""

    scanned = asyncio.Event()
    go_on = asyncio.Event()

    async def busy_keys(self) -> set[str]:
        keys = await super().busy_keys()
        self.scanned.set()
        await self.go_on.wait()
        return keys


async def test_two_reconcile_loops_scanning_at_once_queue_one_job_for_a_run(
    pg_url: str, tmp_path: Path, github_settings: Any
) -> None:
    SlowScan.scanned, SlowScan.go_on = asyncio.Event(), asyncio.Event()
    load_or_create_signer(tmp_path / "signing-key.pem", announce=False)
    settings = load_settings({
        "GWI_DATA_DIR": str(tmp_path / "data"), "GWI_DATABASE_URL": pg_url,
        "GWI_SIGNING_KEY": str(tmp_path / "signing-key.pem"),
    }).model_copy(update={"github": github_settings})
    first = await asyncio.to_thread(PostgresQueueStore.open, pg_url)
    second = await asyncio.to_thread(SlowScan.open, pg_url)
    try:
        async with contextlib.AsyncExitStack() as stack:
            gh1, gh2 = [await stack.enter_async_context(
                open_service(settings, github_settings, store, Metrics()))
                for store in (first, second)]
            # A run a crash left queued: indexed, never shown on GitHub, no job of its PR alive.
            run_id = gh1.runs.create({
                "repository": {"owner": "octo-org", "name": "widgets",
                               "full_name": "octo-org/widgets"},
                "pull_request": {"number": 7, "url": "https://github.com/octo-org/widgets/pull/7"},
                "base": {"ref": "main", "sha": "b" * 40}, "head": {"ref": "f", "sha": "a" * 40},
                "initiator": {"type": "system", "id": "test"},
                "installation_id": GITHUB_INSTALLATION_ID,
                "agents": settings.llm.agent_config, "workspace": str(tmp_path / "repo.git"),
            })
            await gh1.index.add(run_id, "octo-org/widgets", 7, "a" * 40, "b" * 40)
            slow = asyncio.create_task(reconcile_runs(gh2, orphan_age=3600))
            await SlowScan.scanned.wait()  # the second has seen no busy key...
            assert await reconcile_runs(gh1, orphan_age=3600) == 1  # ...the first queues
            SlowScan.go_on.set()
            assert await slow == 0  # and the second, finding it, queues nothing
    finally:
        await asyncio.to_thread(first.close)
        await asyncio.to_thread(second.close)
    jobs = await asyncio.to_thread(_reconcile_jobs, pg_url)
    assert jobs == [(run_id, "queued")]


def _reconcile_jobs(url: str) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT payload::json->>'run_id', payload::json->>'state' FROM jobs"
                            " WHERE kind = %s", (RECONCILE_JOB,)).fetchall()
    return [(str(a), str(b)) for a, b in rows]
