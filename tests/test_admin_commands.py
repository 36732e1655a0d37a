"""`gwi queue`, `gwi deliveries redeliver` and `gwi prune`, as an operator types them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.queue.factory import open_queue
from bot.queue.interface import QueueStore
from bot.queue.records import Delivery, JobStatus, UnitOfWork
from bot.runs.store_factory import open_run_store
from bot.schemas.state import Outcome, RunState
from bot.settings import load_settings
from tests import builders as b
from tests.conftest import GITHUB_APP_ID


def _queue() -> QueueStore:
    return open_queue(load_settings())  # the backend the environment names, as the CLI does


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test on SQLite, then with GWI_DATABASE_URL naming a fresh PostgreSQL database."""
    if request.param == "postgres":
        monkeypatch.setenv("GWI_DATABASE_URL", request.getfixturevalue("pg_url"))
    return str(request.param)


def _failed_job() -> int:
    async def make() -> int:
        store = _queue()
        try:
            job = (await store.enqueue_job("pr.run", {"n": 1}, max_attempts=1)).job_id
            claim = await store.claim_job("me", ["pr.run"], 30)
            assert claim is not None
            await store.fail_job(claim, "me", "GitHub said no")
            return job
        finally:
            store.close()

    return asyncio.run(make())


def test_queue_list_shows_a_failed_job_and_retry_puts_it_back(
    capsys: pytest.CaptureFixture[str], backend: str
) -> None:
    job = _failed_job()
    assert main(["queue", "list", "--failed"]) == 0
    out = capsys.readouterr().out
    assert f"{job:>6} failed" in out and "GitHub said no" in out
    assert main(["queue", "retry", str(job)]) == 0
    assert "pending again" in capsys.readouterr().out
    store = _queue()
    try:
        assert asyncio.run(store.get_job(job)).status is JobStatus.PENDING  # type: ignore[union-attr]
    finally:
        store.close()
    assert main(["queue", "retry", str(job)]) == 2  # pending: nothing to retry
    assert "has not failed" in capsys.readouterr().err


async def test_redeliver_asks_github(fake_github: Any, github_app_key: str,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    delivery = fake_github.add_delivery("pull_request", "opened", status_code=500)
    monkeypatch.setenv("GITHUB_APP_ID", GITHUB_APP_ID)
    monkeypatch.setenv("GITHUB_PRIVATE_KEY", github_app_key)
    monkeypatch.setenv("GITHUB_API_URL", fake_github.base_url)
    # the command runs its own event loop; the fake GitHub answers on this one
    assert await asyncio.to_thread(main, ["deliveries", "redeliver", str(delivery.id)]) == 0
    assert fake_github.redeliveries == [delivery.id]
    assert "asked to send it again" in capsys.readouterr().out


def test_prune_deletes_what_finished_long_ago_and_never_an_unfinished_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = open_run_store(load_settings())
    finished = runs.create(b.context_fields())
    with runs.open(finished) as run:
        run.transition(RunState.ABORTED, reason="test", outcome=Outcome.CANCELLED)
    unfinished = runs.create(b.context_fields())

    async def old_delivery() -> None:
        store = _queue()
        try:
            await store.insert_delivery(Delivery("d-1", "ping", b"{}"))
            claim = await store.claim_delivery("me", 30)
            assert claim is not None
            await store.finish_delivery(claim, "me", [("h", UnitOfWork())], [])
        finally:
            store.close()

    asyncio.run(old_delivery())
    cache = load_settings().data_dir / "repos" / "octo-org" / "widgets.git"
    cache.mkdir(parents=True)
    (cache / "HEAD").write_text("ref: refs/heads/main\n")
    later = time.time() + 3 * 86400
    monkeypatch.setattr("bot.cli.admin_commands.time.time", lambda: later)
    assert main(["prune", "--older-than", "2d", "--dry-run"]) == 0
    assert "would delete 1 finished run(s), 1 repository cache(s)" in capsys.readouterr().out
    assert runs.exists(finished)
    assert main(["prune", "--older-than", "2d"]) == 0
    out = capsys.readouterr().out
    assert "deleted 1 finished run(s), 1 delivery(ies)" in out
    assert not runs.exists(finished) and runs.exists(unfinished)
    assert not cache.exists()
    assert main(["prune", "--older-than", "2d"]) == 0
    assert "deleted 0 finished run(s), 0 delivery(ies)" in capsys.readouterr().out


@pytest.mark.parametrize("age", ["30", "0d", "5w", "-1d"])
def test_prune_refuses_an_age_it_cannot_read(age: str, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    with pytest.raises(SystemExit) as done:
        main(["prune", f"--older-than={age}"])
    assert done.value.code == 2
    assert "not an age" in capsys.readouterr().err


def test_a_running_cache_is_not_pruned(tmp_path: Path) -> None:
    import fcntl
    import os

    from bot.cli.admin_commands import _remove_unless_in_use

    git_dir = tmp_path / "repos" / "o" / "r.git"
    git_dir.mkdir(parents=True)
    fd = os.open(git_dir.parent / ".r.git.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        assert _remove_unless_in_use(git_dir) is False and git_dir.exists()
    finally:
        os.close(fd)
    assert _remove_unless_in_use(git_dir) is True and not git_dir.exists()
