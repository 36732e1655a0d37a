"""Web processes and workers as real processes sharing one PostgreSQL: a storm split between two
web processes, PostgreSQL restarted under a storm, and a worker killed in the middle of runs.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.queue.pg_store import PostgresQueueStore
from bot.runs.signing import load_or_create_signer
from bot.runs.verify import verify_bundle
from tests.multiprocess_world import World, issue, post, until
from tests.pg_server import PgServer

DISTINCT = 900
DUPLICATES = 100
PRS = 6
CONCURRENCY = 50
pytestmark = pytest.mark.slow


async def test_a_storm_split_between_two_web_processes_runs_each_delivery_once(
    fake_github: Any, pg_url: str, tmp_path: Path
) -> None:
    world = World(fake_github, tmp_path, pg_url)
    world.seed(PRS)
    webs = [world.start("web") for _ in range(2)]
    workers = [world.start("worker") for _ in range(2)]
    # 900 distinct deliveries (six open a pull request, the rest make a job each), sent round
    # robin; 100 of them (every pull request's among them) again, each to the OTHER process.
    messages = {f"pr-{n}": world.opened(n) for n in range(1, PRS + 1)}
    messages.update({f"storm-{n}": issue(f"storm-{n}") for n in range(DISTINCT - PRS)})
    first = {delivery_id: n % 2 for n, delivery_id in enumerate(messages)}
    rng = random.Random(15)
    storm = [d for d in messages if d.startswith("storm-")]
    again = [f"pr-{n}" for n in range(1, PRS + 1)] + rng.sample(storm, DUPLICATES - PRS)
    sends = [(d, first[d]) for d in messages] + [(d, 1 - first[d]) for d in again]
    rng.shuffle(sends)
    gate = asyncio.Semaphore(CONCURRENCY)
    try:
        for proc in [*webs, *workers]:
            await proc.started()
        async with aiohttp.ClientSession() as session:

            async def send(delivery_id: str, to: int) -> int:
                async with gate:
                    return await post(session, webs[to].port, delivery_id, messages[delivery_id])

            statuses = Counter(await asyncio.gather(*(send(d, to) for d, to in sends)))
        assert statuses == {202: DISTINCT, 200: DUPLICATES}

        async def settled() -> bool:
            checks = [c for cs in world.check_runs_by_head().values() for c in cs]
            return (await asyncio.to_thread(world.busy) == 0 and len(checks) == PRS
                    and all(c.status == "completed" for c in checks))

        await until(settled, 180, "the storm to be processed")
    finally:
        exits = world.stop_all()
    assert exits == dict.fromkeys(exits, 0), "every process stops cleanly on SIGTERM"

    assert world.rows("SELECT status, COUNT(*), COUNT(DISTINCT delivery_id) FROM deliveries"
                      " GROUP BY 1") == [("done", DISTINCT, DISTINCT)]
    assert world.rows("SELECT kind, status, COUNT(*), COUNT(DISTINCT payload) FROM jobs"
                      " GROUP BY 1, 2 ORDER BY 1") == [
        ("pr.run", "done", PRS, PRS), ("storm.seen", "done", DISTINCT - PRS, DISTINCT - PRS)]
    # one run per pull request head: in the index, on the workers' disks, and on GitHub
    assert world.rows("SELECT pr, COUNT(*), COUNT(DISTINCT head_sha) FROM pr_runs GROUP BY 1"
                      " ORDER BY 1") == [(n, 1, 1) for n in range(1, PRS + 1)]
    assert len(_verified_runs(world)) == PRS  # in the shared run store, each one verified
    by_head = world.check_runs_by_head()
    assert sorted(len(checks) for checks in by_head.values()) == [1] * PRS
    heads = {fake_github.pull("octo-org/fleet", n).head_sha for n in range(1, PRS + 1)}
    assert set(by_head) == heads
    for proc in [*webs, *workers]:  # bundles are rows in PostgreSQL, on no host's disk
        assert not (world.data_dir(proc) / "runs").exists()


async def test_postgres_restarted_during_a_storm_loses_nothing_it_acknowledged(
    fake_github: Any, pg_server: PgServer, tmp_path: Path
) -> None:
    server = PgServer(pg_server.bin_dir)  # a server of its own: this test stops it
    try:
        await asyncio.to_thread(lambda: PostgresQueueStore.open(server.url()).close())
        await _storm_across_a_restart(World(fake_github, tmp_path, server.url()), server)
    finally:
        server.close()


async def _storm_across_a_restart(world: World, server: PgServer) -> None:
    web = world.start("web", GWI_INTAKE_TIMEOUT="1")
    # What the outage cut short (a claim whose finish could not be written) is taken up again
    # when its lease runs out: a short one keeps the test short.
    worker = world.start("worker", GWI_LEASE_SECONDS="2")
    acked: dict[str, int] = {}
    refused: list[str] = []
    down_health: list[int] = []
    restarted = asyncio.Event()
    names = iter(f"restart-{n}" for n in range(100_000))
    try:
        await web.started()
        await worker.started()
        async with aiohttp.ClientSession() as session:

            async def sender() -> None:
                # Sends until PostgreSQL is back and 100 more went through after it.
                while not (restarted.is_set() and len(acked) >= after_restart):
                    delivery_id = next(names)
                    status = await post(session, web.port, delivery_id, issue(delivery_id))
                    if status in (200, 202):
                        acked[delivery_id] = status
                    else:
                        assert status == 503, status
                        refused.append(delivery_id)

            async def outage() -> None:
                nonlocal after_restart
                await until(_at_least(acked, 100), 60, "100 deliveries before the outage")
                await asyncio.to_thread(server.stop)
                await until(_at_least(refused, 20), 60, "deliveries refused during the outage")
                async with session.get(f"http://127.0.0.1:{web.port}/healthz") as response:
                    down_health.append(response.status)
                await asyncio.to_thread(server.start)
                after_restart = len(acked) + 100
                restarted.set()

            after_restart = 1 << 30
            await asyncio.gather(outage(), *(sender() for _ in range(10)))
            # As GitHub would (asked by downtime recovery): deliver again what was refused.
            for delivery_id in refused:
                status = await post(session, web.port, delivery_id, issue(delivery_id))
                assert status in (200, 202), status
                acked[delivery_id] = status

        async def drained() -> bool:
            return await asyncio.to_thread(world.busy) == 0

        await until(drained, 120, "every acknowledged delivery to be processed")
    finally:
        exits = world.stop_all()
    assert exits == {"web-0": 0, "worker-1": 0}
    assert down_health == [503]
    sent = set(acked)
    assert len(refused) >= 20 and set(refused) <= sent
    stored = {d for (d,) in world.rows("SELECT delivery_id FROM deliveries WHERE status = 'done'")}
    assert stored == sent
    seen = Counter(p for (p,) in world.rows("SELECT payload::json->>'delivery' FROM jobs"
                                              " WHERE kind = 'storm.seen' AND status = 'done'"))
    assert set(seen) == sent and set(seen.values()) == {1}


def _at_least(items: Any, n: int) -> Any:
    async def enough() -> bool:
        return len(items) >= n

    return enough


@pytest.mark.parametrize("point", ["fetched", "check_run_created"])
async def test_a_worker_killed_in_the_middle_of_a_run_leaves_its_jobs_to_the_other(
    fake_github: Any, pg_url: str, tmp_path: Path, point: str
) -> None:
    """Killed after its fetch (no bundle yet) or once its bundle is made and indexed, the run
    is finished by the survivor (the bundle is in the shared run store), its bundle verifies,
    and no head gets a second run or a second check-run."""
    world = World(fake_github, tmp_path, pg_url)
    world.seed(2)
    # A short lease: the survivor takes up what the dead worker held a second after its death.
    hold = {"GWI_LEASE_SECONDS": "1", "GWI_STORM_HOLD_RUNS": point}
    web = world.start("web")
    workers = [world.start("worker", **hold) for _ in range(2)]
    head1 = fake_github.pull("octo-org/fleet", 1).head_sha
    try:
        for proc in [web, *workers]:
            await proc.started()
        async with aiohttp.ClientSession() as session:
            assert await post(session, web.port, "pr-1", world.opened(1)) == 202
            for n in range(3):
                assert await post(session, web.port, f"hold-{n}",
                                  issue(f"hold-{n}", hold=True)) == 202

            async def all_slots_busy() -> bool:
                # Four jobs running (the run paused at the point), two per worker.
                running = await asyncio.to_thread(
                    world.rows, "SELECT COUNT(*) FROM jobs WHERE status = 'running'")
                return running == [(4,)] and f"paused {point}" in world.storm_log.read_text()

            await until(all_slots_busy, 60, "both workers to be busy with the run and holds")
            [(owner,)] = world.rows("SELECT lease_owner FROM jobs WHERE kind = 'pr.run'")
            victim = next(w for w in workers if f":{w.pid}:" in owner)
            survivor = next(w for w in workers if w is not victim)
            assert f"paused {point} {victim.pid}" in world.storm_log.read_text()
            held = world.rows("SELECT id, kind FROM jobs WHERE status = 'running'"
                              " AND lease_owner LIKE %s ORDER BY id", f"%:{victim.pid}:%")
            assert sorted(kind for _, kind in held) == ["pr.run", "storm.hold"]
            victim.kill()
            assert victim.proc.returncode == -signal.SIGKILL
            world.release.touch()

            async def taken_over() -> bool:
                rows = await asyncio.to_thread(
                    world.rows, "SELECT kind, status, attempts FROM jobs WHERE id = ANY(%s)",
                    [job_id for job_id, _ in held])
                return all(attempts >= 2 and (kind != "storm.hold" or status == "done")
                           for kind, status, attempts in rows)

            await until(taken_over, 60, "the survivor to take up the dead worker's jobs")
            finished = [line.split() for line in world.storm_log.read_text().splitlines()
                        if line.startswith("finished")]
            assert sorted(d for d, pid in ((d, int(p)) for _, d, p in finished)
                          if pid == survivor.pid) == ["hold-0", "hold-1", "hold-2"]
            async def first_run_reported() -> bool:
                checks = world.check_runs_by_head().get(head1, [])
                return bool(checks) and all(c.status == "completed" for c in checks)

            await until(first_run_reported, 60, "the survivor to finish the first run")
            # A later pull request is run from start to end by the survivor.
            assert await post(session, web.port, "pr-2", world.opened(2)) == 202
            head2 = fake_github.pull("octo-org/fleet", 2).head_sha

            async def second_run_reported() -> bool:
                checks = world.check_runs_by_head().get(head2, [])
                return bool(checks) and all(c.status == "completed" for c in checks)

            await until(second_run_reported, 60, "the second pull request's run")
    finally:
        exits = world.stop_all()
    assert sorted(exits.values()) == [-signal.SIGKILL, 0, 0]
    # No pull request got two check-runs for one head, killed worker or not.
    assert sorted(len(checks) for checks in world.check_runs_by_head().values()) == [1, 1]
    runs = _verified_runs(world)
    assert len(runs) == 2 and all(state == "done" for state in runs.values())
    assert len(world.rows("SELECT run_id FROM pr_runs")) == 2  # one run per head


def _verified_runs(world: World, *, live: bool = False) -> dict[str, str]:
    """Every run in the shared run store, each exported and verified: its state by run id.

    ``live``: the runs may still be moving, and one read between a step's audit line and
    its seal is "in flight", not a failure (the final check reads them settled).
    """
    from bot.runs.store_factory import open_run_store
    from bot.settings import load_settings

    key = load_or_create_signer(world.key, announce=False).public_key_hex
    store = open_run_store(load_settings({"GWI_DATABASE_URL": world.url,
                                          "GWI_SIGNING_KEY": str(world.key),
                                          "GWI_DATA_DIR": str(world.root / "verifier")}))
    try:
        states = {}
        for run_id in store.list_ids():
            with store.materialise(run_id) as folder:
                report = verify_bundle(folder, trusted_keys={key})
            if live and not report.ok:
                states[run_id] = "in flight"
                continue
            assert report.ok, (run_id, report.problems)
            states[run_id] = str(report.state)
        return states
    finally:
        store.close()


async def test_a_worker_stopped_with_sigterm_finishes_what_it_holds_and_exits_cleanly(
    fake_github: Any, pg_url: str, tmp_path: Path
) -> None:
    world = World(fake_github, tmp_path, pg_url)
    web, worker = world.start("web"), world.start("worker")
    try:
        await web.started()
        await worker.started()
        async with aiohttp.ClientSession() as session:
            assert await post(session, web.port, "hold-0", issue("hold-0", hold=True)) == 202

        async def holding() -> bool:
            return "started hold-0" in world.storm_log.read_text()

        await until(holding, 60, "the worker to start the job")
        worker.proc.send_signal(signal.SIGTERM)

        async def stopping() -> bool:
            return "msg=serve.stopping" in worker.log.read_text()

        await until(stopping, 30, "the worker to begin stopping")
        assert worker.proc.poll() is None  # it waits for the work it holds...
        world.release.touch()

        async def exited() -> bool:
            return worker.proc.poll() is not None

        await until(exited, 30, "the worker to exit")
    finally:
        exits = world.stop_all()
    assert exits == {"web-0": 0, "worker-1": 0}
    # ...which it finished, on its first and only attempt.
    assert world.rows("SELECT status, attempts FROM jobs") == [("done", 1)]
    assert world.storm_log.read_text().split("\n")[1] == f"finished hold-0 {worker.pid}"


async def test_an_approval_reaching_both_web_processes_is_pushed_once_though_a_worker_dies(
    fake_github: Any, pg_url: str, tmp_path: Path
) -> None:
    """The approving comment's delivery reaches both web processes (GitHub retried it at the
    other), and the worker that pushes is killed right after the push landed, before it recorded
    it: the branch moves exactly once, and the other worker finishes the run as applied."""
    import re

    world = World(fake_github, tmp_path, pg_url)
    world.seed(0)
    world.seed_conflict(1)
    hold = {"GWI_LEASE_SECONDS": "1", "GWI_STORM_HOLD_RUNS": "pushed"}
    webs = [world.start("web") for _ in range(2)]
    workers = [world.start("worker", **hold) for _ in range(2)]
    try:
        for proc in [*webs, *workers]:
            await proc.started()
        async with aiohttp.ClientSession() as session:
            assert await post(session, webs[0].port, "open-1", world.opened(1)) == 202

            async def awaiting() -> bool:
                checks = world.check_runs_by_head().get(fake_github.pull(
                    "octo-org/fleet", 1).head_sha, [])
                return bool(checks) and checks[0].conclusion == "action_required"

            await until(awaiting, 60, "the run to wait for an approval")
            [check] = [c for cs in world.check_runs_by_head().values() for c in cs]
            patch_hash = re.search(r"/gwi approve (sha256:[0-9a-f]{64})",
                                   check.output["summary"])
            assert patch_hash
            approval = world.comment(1, f"/gwi approve {patch_hash.group(1)}")
            assert await post(session, webs[0].port, "approve-1", approval) == 202
            assert await post(session, webs[1].port, "approve-1", approval) == 200

            async def pushed_and_paused() -> bool:
                return "paused pushed" in world.storm_log.read_text()

            await until(pushed_and_paused, 60, "the push to land")
            assert world.pushes("bump-1") == 1
            [pid] = [int(line.split()[2]) for line in world.storm_log.read_text().splitlines()
                     if line.startswith("paused pushed")]
            victim = next(w for w in workers if w.pid == pid)
            victim.kill()
            world.release.touch()

            async def applied() -> bool:
                runs = await asyncio.to_thread(_verified_runs, world, live=True)
                return list(runs.values()) == ["done"] and check.conclusion == "success"

            await until(applied, 90, "the other worker to finish the run")
            assert list(_verified_runs(world).values()) == ["done"]
    finally:
        exits = world.stop_all()
    assert sorted(exits.values()) == [-signal.SIGKILL, 0, 0, 0]
    assert world.pushes("bump-1") == 1  # pushed once, though its worker died mid-push
    assert world.rows("SELECT COUNT(*) FROM deliveries WHERE delivery_id = 'approve-1'") == [(1,)]
    assert world.rows("SELECT COUNT(*) FROM jobs WHERE kind = 'pr.apply'") == [(1,)]
    assert len([c for cs in world.check_runs_by_head().values() for c in cs]) == 1
