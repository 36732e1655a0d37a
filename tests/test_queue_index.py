"""The PR index and the redelivery ledger kept beside the queue: one contract, tested against
both backends (SQLite and a real PostgreSQL server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.queue.records import Delivery
from tests.queue_backends import BACKENDS, AnyStore, open_store


@pytest.fixture(params=BACKENDS)
async def queue_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AnyStore]:
    s = open_store(request, tmp_path / "data")
    await s.run_index().ensure_schema()  # what every caller does first
    yield s
    await asyncio.to_thread(s.close)


async def test_runs_are_found_by_pr_oldest_first(queue_store: AnyStore) -> None:
    index = queue_store.run_index()
    await index.add("r1", "Octo/Repo", 7, "h1", "b1")
    await index.add("r2", "octo/repo", 7, "h2", "b1")
    await index.add("r3", "octo/repo", 8, "h3", "b1")
    assert [run.run_id for run in await index.for_pr("OCTO/repo", 7)] == ["r1", "r2"]
    latest = await index.latest("octo/repo", 7)
    assert latest is not None and (latest.run_id, latest.head_sha) == ("r2", "h2")
    assert await index.latest("octo/repo", 9) is None
    assert await index.known(["r1", "r3", "nope"]) == {"r1", "r3"}
    assert await index.known([]) == set()


async def test_what_github_was_shown_is_kept_and_finished_never_goes_back(
    queue_store: AnyStore,
) -> None:
    index = queue_store.run_index()
    await index.add("r1", "o/r", 1, "h", "b")
    await index.add("r2", "o/r", 2, "h", "b")
    await index.set_check_run("r1", 4242)
    await index.set_published("r1", "awaiting_approval", finished=False)
    run = await index.get("r1")
    assert run is not None and run.check_run_id == 4242
    assert (run.published_state, run.finished) == ("awaiting_approval", False)
    assert [r.run_id for r in await index.unfinished()] == ["r1", "r2"]
    await index.set_published("r1", "done", finished=True)
    await index.set_published("r1", "done", finished=False)  # a late writer cannot reopen it
    run = await index.get("r1")
    assert run is not None and run.finished and run.published_state == "done"
    await index.set_finished("r2")
    assert await index.unfinished() == []
    assert await index.get("nope") is None


async def test_anchors_keep_the_first_hash_of_each_seq(queue_store: AnyStore) -> None:
    index = queue_store.run_index()
    assert await index.latest_anchor("r1") is None
    await index.record_anchor("r1", 3, "sha256:aaa")
    await index.record_anchor("r1", 3, "sha256:forged")
    await index.record_anchor("r1", 9, "sha256:bbb")
    await index.record_anchor("r1", 5, "sha256:ccc")
    assert await index.latest_anchor("r1") == (9, "sha256:bbb")
    await index.add("r1", "o/r", 1, "h", "b")
    assert await index.forget(["r1", "never"]) == 1
    assert await index.latest_anchor("r1") is None and await index.get("r1") is None


async def test_a_budget_allows_its_limit_per_window_even_when_asked_at_once(
    queue_store: AnyStore,
) -> None:
    index = queue_store.run_index()
    granted = await asyncio.gather(*(index.take_slot("replies:o/r#1", limit=3, window=60)
                                     for _ in range(10)))
    assert granted.count(True) == 3
    assert await index.take_slot("replies:o/r#2", limit=3, window=60)  # another scope
    assert not await index.take_slot("replies:o/r#1", limit=3, window=60)


async def test_the_redelivery_ledger_remembers_and_its_marker_never_moves_back(
    queue_store: AnyStore,
) -> None:
    ledger = queue_store.redelivery_ledger()
    assert await ledger.start_point() is None
    await ledger.save_marker(500.0)
    await ledger.save_marker(400.0)
    assert await ledger.start_point() == 500.0
    await queue_store.insert_delivery(Delivery("g-stored", "issues", b"{}"))
    stored_at = await ledger.start_point()
    assert stored_at is not None and stored_at > 500.0  # the newest delivery is later
    await ledger.remember("g-old", 1, at=100.0)
    await ledger.remember("g-new", 2, at=1000.0)
    await ledger.remember("g-old", 3, at=900.0)  # asked again: the latest request counts
    stored, pending = await ledger.known(["g-stored", "g-old", "g-new", "g-none"], patience=800.0)
    assert stored == {"g-stored"}
    assert pending == {"g-old", "g-new"}
    assert await ledger.known([], patience=0.0) == (set(), set())


async def test_the_signing_key_recorded_first_stays(queue_store: AnyStore) -> None:
    assert await queue_store.record_signing_key("aa" * 32) == "aa" * 32
    assert await queue_store.record_signing_key("bb" * 32) == "aa" * 32
    # A rotation replaces the recorded key only where the retired one is recorded.
    assert await queue_store.replace_signing_key("cc" * 32, "dd" * 32) == "aa" * 32
    assert await queue_store.replace_signing_key("aa" * 32, "bb" * 32) == "bb" * 32
    assert await queue_store.record_signing_key("aa" * 32) == "bb" * 32
