"""A real `gwi serve` killed with SIGKILL mid-work, then restarted: nothing lost, nothing twice.

This module is also the probe the server loads with ``--extra-module test_intake_crash``: its
handler writes each attempt to ``$GWI_PROBE_FILE`` (what a crash can repeat) and records the
delivery through its unit of work (what must happen exactly once).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from gidgethub import routing, sansio

from bot.queue.records import UnitOfWork
from bot.queue.schema import DB_FILENAME

TESTS = Path(__file__).resolve().parent
SECRET = "crash-test-secret"
DELIVERIES = 30

router = routing.Router()


@router.register("issues")
async def probe(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
    await asyncio.to_thread(_record_attempt, event.delivery_id)
    await asyncio.sleep(float(os.environ["GWI_PROBE_DELAY"]))
    unit.enqueue_job("probe.processed", {"delivery": event.delivery_id})


def _record_attempt(delivery_id: str) -> None:
    with open(os.environ["GWI_PROBE_FILE"], "a", encoding="utf-8") as attempts:
        attempts.write(f"{os.getpid()} {delivery_id}\n")


@contextmanager
def serve(
    data_dir: Path, probe_file: Path, delay: float
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Start `gwi serve` on a free port; yield the process and its port; stop it after."""
    from tests.conftest import app_env

    log = data_dir.parent / f"serve-{time.monotonic_ns()}.log"
    env = {
        **os.environ,
        **app_env(),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GWI_DATA_DIR": str(data_dir),
        "GWI_HOST": "127.0.0.1",
        "PORT": "0",
        "GWI_WORKERS": "2",
        "GWI_LEASE_SECONDS": "1",
        "GWI_PROBE_FILE": str(probe_file),
        "GWI_PROBE_DELAY": str(delay),
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", "--extra-module", "test_intake_crash"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        port = _wait_for_port(proc, log)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


def _wait_for_port(proc: subprocess.Popen[bytes], log: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"msg=serve\.listening host=\S+ port=(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        if proc.poll() is not None:
            raise AssertionError(f"gwi serve exited: {log.read_text()}")
        time.sleep(0.02)
    raise AssertionError(f"gwi serve did not start: {log.read_text()}")


def post(port: int, delivery_id: str) -> int:
    import hashlib
    import hmac

    body = json.dumps({"action": "opened", "issue": {"number": 1}}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issues",
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": "sha256="
        + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/webhook", body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / DB_FILENAME) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.slow
def test_sigkill_after_accepting_loses_nothing_and_repeats_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    probe_file = tmp_path / "attempts.txt"
    probe_file.touch()
    ids = [f"crash-{n}" for n in range(DELIVERIES)]

    # First life: accept everything, get the workers into their (slow) handlers, then die.
    with serve(data_dir, probe_file, delay=5.0) as (first, port):
        assert [post(port, d) for d in ids] == [202] * DELIVERIES
        deadline = time.monotonic() + 10
        while len(probe_file.read_text().splitlines()) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    interrupted = {line.split()[1] for line in probe_file.read_text().splitlines()}
    assert len(interrupted) >= 1
    # Everything acknowledged is on disk; what was mid-handler is still leased to the dead.
    stored = dict(query(data_dir, "SELECT delivery_id, status FROM deliveries"))
    assert set(stored) == set(ids)
    assert {stored[d] for d in interrupted} == {"processing"}
    assert query(data_dir, "SELECT COUNT(*) FROM jobs") == [(0,)]

    # Second life: the expired leases are taken up and the rest processed.
    with serve(data_dir, probe_file, delay=0.0) as (second, _):
        deadline = time.monotonic() + 30
        while query(data_dir, "SELECT COUNT(*) FROM deliveries WHERE status != 'done'") != [(0,)]:
            assert time.monotonic() < deadline, "the restarted server did not finish"
            assert second.poll() is None
            time.sleep(0.05)
        second.terminate()
        assert second.wait(timeout=30) == 0

    processed = Counter(
        json.loads(payload)["delivery"]
        for (payload,) in query(data_dir, "SELECT payload FROM jobs WHERE kind = 'probe.processed'")
    )
    assert processed == Counter(ids)  # each accepted delivery's effects committed exactly once
    attempts = Counter(line.split()[1] for line in probe_file.read_text().splitlines())
    assert all(attempts[d] == 2 for d in interrupted)  # the interrupted ones were run again
    assert query(
        data_dir,
        f"SELECT COUNT(*) FROM deliveries WHERE attempts = 2 AND delivery_id IN"
        f" ({','.join(repr(d) for d in interrupted)})",
    ) == [(len(interrupted),)]
