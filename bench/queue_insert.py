"""`make bench-queue`: deliveries stored per second by each queue backend, at the store's own
interface (no HTTP): SQLite in a temporary folder, and PostgreSQL in a server this script starts
from the distribution's binaries (tests/pg_server.py) with its durable defaults (fsync on,
synchronous_commit on). Every insert is committed before it counts, as `insert_delivery`
promises. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.queue.interface import QueueStore
from bot.queue.pg_store import PostgresQueueStore
from bot.queue.records import Delivery
from bot.queue.sqlite_store import SqliteQueueStore
from tests.pg_server import PgServer, find_bin_dir

BODY = json.dumps({"action": "opened", "number": 7, "installation": {"id": 9},
                   "repository": {"full_name": "octo/repo"}, "text": "x" * 4000}).encode()


async def load(store: QueueStore, prefix: str, count: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(count):
        queue.put_nowait(n)

    async def client() -> None:
        while not queue.empty():
            n = queue.get_nowait()
            started = time.perf_counter()
            assert await store.insert_delivery(Delivery(f"{prefix}-{n}", "pull_request", BODY))
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"per_s": round(count / elapsed), "p50_ms": round(1000 * statistics.median(latencies), 2),
            "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 2)}


def measure(store: QueueStore, count: int, concurrency: int, rounds: int) -> dict[str, float]:
    asyncio.run(load(store, "warm", 200, concurrency))
    results = [asyncio.run(load(store, f"r{r}", count, concurrency)) for r in range(rounds)]
    return {key: statistics.median(r[key] for r in results) for key in results[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, object] = {"count": args.count, "concurrency": args.concurrency,
                                  "body_bytes": len(BODY), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="gwi-bench-queue-") as folder:
        sqlite = SqliteQueueStore.open(Path(folder))
        try:
            figures["sqlite"] = measure(sqlite, args.count, args.concurrency, args.rounds)
        finally:
            sqlite.close()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        figures["postgres"] = "skipped: PostgreSQL's initdb and pg_ctl are not installed"
    else:
        server = PgServer(bin_dir, fsync=True)
        try:
            postgres = PostgresQueueStore.open(server.url())
            try:
                figures["postgres"] = measure(postgres, args.count, args.concurrency, args.rounds)
            finally:
                postgres.close()
        finally:
            server.close()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
