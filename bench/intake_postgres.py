"""The PostgreSQL half of `make bench-intake`: one, then two `gwi serve --web-only` processes and
one `gwi worker`, sharing a PostgreSQL server this script starts from the distribution's binaries
(tests/pg_server.py) with its durable defaults (fsync on, synchronous_commit on).

Each configuration gets a fresh database, a warm-up, then the same rounds as SQLite's: N signed
deliveries per round, split evenly between the web processes (each its own load process at its
share of the concurrency, all at once), each round starting with the worker idle. A round's
accepted/s is the sum over the web processes, its p50/p99/max the worst of them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import intake

sys.path.insert(0, str(intake.ROOT))

from tests.pg_server import PgServer, find_bin_dir


def measure_postgres(args: argparse.Namespace, tmp: Path, body: Path,
                     env: dict[str, str]) -> dict[str, Any]:
    """Figures for one and for two web processes, or why they were skipped."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        return {"skipped": "PostgreSQL's initdb and pg_ctl are not installed"}
    from bot.runs.signing import load_or_create_signer

    key = tmp / "pg-signing-key.pem"
    load_or_create_signer(key, announce=False)  # every process must sign with one key
    server = PgServer(bin_dir, fsync=True)
    try:
        return {f"{webs}_web": _measure(args, tmp / f"pg-{webs}", body,
                                        {**env, "GWI_SIGNING_KEY": str(key),
                                         "GWI_DATABASE_URL": server.create_database()}, webs)
                for webs in (1, 2)}
    finally:
        server.close()


def _measure(args: argparse.Namespace, root: Path, body: Path, env: dict[str, str],
             webs: int) -> dict[str, Any]:
    root.mkdir()
    ports = [intake.free_port() for _ in range(webs + 1)]
    procs = []
    for n, port in enumerate(ports):
        role = ["serve", "--web-only"] if n < webs else ["worker"]
        name = f"web-{n}" if n < webs else "worker"
        proc_env = {**env, "GWI_DATA_DIR": str(root / name), "PORT": str(port)}
        procs.append((intake.start([sys.executable, "-m", "bot", *role], proc_env,
                                   root / f"{name}.log"), port, root / f"{name}.log"))
    url = env["GWI_DATABASE_URL"]
    rounds: list[dict[str, Any]] = []
    drained: list[float] = []
    try:
        for proc, port, log in procs:
            intake.wait_ready(proc, port, log)
        web_ports = ports[:webs]
        _together(web_ports, body, "warm", args.warmup, args.concurrency)
        _wait_drained(url)
        for r in range(args.rounds):
            rounds.append(_together(web_ports, body, f"r{r}", args.n, args.concurrency))
            started = time.perf_counter()
            _wait_drained(url)
            drained.append(time.perf_counter() - started)
        persisted = _count(url, "SELECT COUNT(*) FROM deliveries WHERE delivery_id LIKE 'r%%'")
        failed = _count(url, "SELECT COUNT(*) FROM deliveries WHERE status = 'failed'")
    finally:
        for proc, _, _ in procs:
            intake.stop(proc)
    figures = intake.median_round(rounds)
    sent = args.n * args.rounds
    figures.update(persisted=persisted, failed_deliveries=failed,
                   all_persisted=persisted == sent == figures["statuses"].get("202"),
                   backlog_drained_s=round(statistics.median(drained), 2))
    return figures


def _together(ports: list[int], body: Path, prefix: str, n: int,
              concurrency: int) -> dict[str, Any]:
    """One round: each web process gets its share of the deliveries and concurrency at once."""
    share, in_flight = n // len(ports), max(1, concurrency // len(ports))
    with ThreadPoolExecutor(len(ports)) as pool:
        results = list(pool.map(
            lambda i: intake.load(ports[i], body, f"{prefix}w{i}-", share, in_flight),
            range(len(ports))))
    statuses: dict[str, int] = {}
    for result in results:
        for status, count in result["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {"accepted_per_s": round(sum(r["accepted_per_s"] for r in results), 1),
            **{key: max(r[key] for r in results) for key in ("p50_ms", "p99_ms", "max_ms")},
            "statuses": statuses}


def _count(url: str, sql: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
    return int(row[0]) if row else 0


def _wait_drained(url: str) -> None:
    deadline = time.monotonic() + 600
    while _count(url, "SELECT COUNT(*) FROM deliveries"
                      " WHERE status IN ('pending', 'processing')"):
        if time.monotonic() > deadline:
            raise SystemExit("the worker did not drain the backlog in 10 minutes")
        time.sleep(0.05)
