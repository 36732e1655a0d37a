"""`make bench-intake`: webhook intake speed of a real `gwi serve` against a bare aiohttp handler.

Starts each server as its own process on loopback and loads them in turns from a third
process (``bench/intake_load.py``): N signed deliveries per round at the given concurrency,
after a warm-up, several rounds, each gwi round starting with its workers idle. Prints one
JSON line: accepted/s, p50/p99 latency (medians over the rounds: the machine may be shared),
the ratio to the bare handler, and whether every delivery gwi acknowledged is in its SQLite
queue the moment the load ends. Then the same against PostgreSQL (``bench/intake_postgres.py``):
one and two `gwi serve --web-only` processes with one `gwi worker`; ``--no-postgres`` skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "tests" / "fixtures" / "github" / "webhook-examples.json"
SECRET = "bench-webhook-secret"


def payload() -> bytes:
    """A real `pull_request` `opened` payload (about 22 kB), as GitHub sends most often."""
    events = json.loads(EXAMPLES.read_bytes())
    [pull_request] = [event for event in events if event["name"] == "pull_request"]
    opened = next(e for e in pull_request["examples"] if e.get("action") == "opened")
    return json.dumps(opened).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early:\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"server did not start:\n{log.read_text()}")


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def load(port: int, body: Path, prefix: str, n: int, concurrency: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "intake_load.py"),
            "--port",
            str(port),
            "--body",
            str(body),
            "--secret",
            SECRET,
            "--prefix",
            prefix,
            "-n",
            str(n),
            "--concurrency",
            str(concurrency),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    figures: dict[str, Any] = json.loads(out.stdout)
    return figures


def queue_rows(data_dir: Path, sql: str) -> Any:
    with sqlite3.connect(data_dir / "queue.sqlite3") as conn:
        return conn.execute(sql).fetchone()[0]


def median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the rounds (the machine may be shared: rounds vary)."""
    figures = {
        key: round(statistics.median(r[key] for r in rounds), 2)
        for key in ("accepted_per_s", "p50_ms", "p99_ms", "max_ms")
    }
    statuses: dict[str, int] = {}
    for r in rounds:
        for status, count in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {
        **figures,
        "statuses": statuses,
        "rounds": [r["accepted_per_s"] for r in rounds],
        "rounds_p99_ms": [r["p99_ms"] for r in rounds],
    }


def app_credentials() -> dict[str, str]:
    """A throwaway App identity: `gwi serve` needs one, the benchmark never calls GitHub."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM,
                            serialization.PrivateFormat.TraditionalOpenSSL,
                            serialization.NoEncryption()).decode()
    return {"GITHUB_APP_ID": "1", "GITHUB_PRIVATE_KEY": pem}


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    body = tmp / "body.json"
    body.write_bytes(payload())
    data_dir = tmp / "data"
    gwi_port, bare_port = free_port(), free_port()
    gwi_env = {
        **os.environ,
        **app_credentials(),
        "GITHUB_WEBHOOK_SECRET": SECRET,
        "GWI_DATA_DIR": str(data_dir),
        "GWI_HOST": "127.0.0.1",
        "PORT": str(gwi_port),
        "GWI_WORKERS": str(args.workers),
        "GWI_LOG_LEVEL": "INFO",
    }
    bare_env = {**os.environ, "GITHUB_WEBHOOK_SECRET": SECRET, "PORT": str(bare_port)}
    gwi = start([sys.executable, "-m", "bot", "serve"], gwi_env, tmp / "gwi-serve.log")
    bare = start(
        [sys.executable, str(ROOT / "bench" / "intake_bare.py")], bare_env, tmp / "bare.log"
    )
    gwi_rounds: list[dict[str, Any]] = []
    bare_rounds: list[dict[str, Any]] = []
    drained: list[float] = []
    try:
        wait_ready(gwi, gwi_port, tmp / "gwi-serve.log")
        wait_ready(bare, bare_port, tmp / "bare.log")
        load(bare_port, body, "warm", args.warmup, args.concurrency)
        load(gwi_port, body, "warm", args.warmup, args.concurrency)
        for r in range(args.rounds):
            # The two servers take turns, so a busy moment on the machine hits both alike.
            bare_rounds.append(load(bare_port, body, f"r{r}", args.n, args.concurrency))
            gwi_rounds.append(load(gwi_port, body, f"r{r}", args.n, args.concurrency))
            # Each round starts with the workers idle: wait for the backlog to drain.
            started = time.perf_counter()
            while queue_rows(
                data_dir,
                "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'processing')",
            ):
                time.sleep(0.05)
            drained.append(time.perf_counter() - started)
        persisted = queue_rows(
            data_dir, "SELECT COUNT(*) FROM deliveries WHERE delivery_id GLOB 'r[0-9]*'"
        )
        with urllib.request.urlopen(f"http://127.0.0.1:{gwi_port}/healthz") as response:
            health = json.load(response)
    finally:
        stop(gwi)
        stop(bare)
    sent = args.n * args.rounds
    gwi_figures = median_round(gwi_rounds)
    gwi_figures["persisted"] = persisted
    gwi_figures["all_persisted"] = persisted == sent == gwi_figures["statuses"].get("202")
    gwi_figures["failed_deliveries"] = health["deliveries"]["failed"]
    gwi_figures["backlog_drained_s"] = round(statistics.median(drained), 2)
    bare_figures = median_round(bare_rounds)
    ratio = gwi_figures["accepted_per_s"] / bare_figures["accepted_per_s"]
    postgres: dict[str, Any] = {"skipped": "--no-postgres"}
    if args.postgres:
        from intake_postgres import measure_postgres

        shared = {k: v for k, v in gwi_env.items() if k not in ("GWI_DATA_DIR", "PORT")}
        postgres = measure_postgres(args, tmp, body, shared)
        for figures in postgres.values():
            if isinstance(figures, dict):
                figures["throughput_ratio"] = round(
                    figures["accepted_per_s"] / bare_figures["accepted_per_s"], 3)
    return {
        "bench": "intake",
        "n": args.n,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "payload_bytes": len(payload()),
        "workers": args.workers,
        "gwi": gwi_figures,
        "bare": bare_figures,
        "throughput_ratio": round(ratio, 3),
        "postgres": postgres,
        "targets": {
            "p99_under_50ms": gwi_figures["p99_ms"] < 50,
            "throughput_at_least_half_of_bare": ratio >= 0.5,
            "every_delivery_persisted": gwi_figures["all_persisted"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("-n", type=int, default=4000, help="deliveries per round (4000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per server (5)")
    parser.add_argument("--warmup", type=int, default=500, help="deliveries sent first, unmeasured")
    parser.add_argument("--concurrency", type=int, default=50, help="requests in flight (50)")
    parser.add_argument("--workers", type=int, default=2, help="GWI_WORKERS for gwi serve (2)")
    parser.add_argument("--no-postgres", dest="postgres", action="store_false",
                        help="skip the PostgreSQL figures (one and two web processes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gwi-bench-") as tmp:
        result = run(args, Path(tmp))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
