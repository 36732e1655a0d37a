"""`make bench-runs`: what a run bundle costs in each run store. Writes whole runs (created, six
transitions, a 2 kB plan and a 20 kB patch, sealed and signed: 21 audit lines) through the
store's interface, in the local folder store and in PostgreSQL (a server this script starts from
the distribution's binaries, tests/pg_server.py, with its durable defaults: fsync on), one writer
and four at once; then the bytes a bundle takes and the time to export one. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg

from bot.runs.folder_store import FolderRunStore
from bot.runs.pg_bundles import PostgresRunStore
from bot.runs.store import RunStore
from bot.schemas.state import Outcome, RunState
from tests.builders import context_fields
from tests.pg_server import PgServer, find_bin_dir

PLAN = "# Plan\n" + "- keep the head's version of a line\n" * 55
PATCH = ("--- a/x.py\n+++ b/x.py\n@@ -1,1 +1,1 @@\n" + "-old line of code\n+new line of code\n"
         * 580).encode()


def one_run(store: RunStore) -> str:
    run_id = store.create(context_fields())
    with store.open(run_id) as run:
        run.transition(RunState.TRIAGED, reason="scored")
        run.write_artifact("plan.md", PLAN)
        run.transition(RunState.PLANNED, reason="planned")
        run.transition(RunState.RESOLVING, reason="conflicts")
        run.write_artifact("patch.diff", PATCH)
        run.transition(RunState.REVIEW, reason="resolved")
        run.transition(RunState.DONE, reason="needs a person", outcome=Outcome.NEEDS_HUMAN)
    return run_id


def measure(store: RunStore, count: int, workers: int) -> dict[str, float]:
    latencies: list[float] = []

    def timed(_: int) -> str:
        started = time.perf_counter()
        run_id = one_run(store)
        latencies.append(time.perf_counter() - started)
        return run_id

    one_run(store)  # the key, the first connections
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        ids = list(pool.map(timed, range(count)))
    elapsed = time.perf_counter() - started
    with tempfile.TemporaryDirectory(prefix="gwi-bench-export-") as dest:
        t0 = time.perf_counter()
        for run_id in ids[:20]:
            store.export(run_id, Path(dest))
        export_ms = 1000 * (time.perf_counter() - t0) / 20
    return {"runs_per_s": round(count / elapsed, 1),
            "ms_per_run_p50": round(1000 * statistics.median(latencies), 1),
            "export_ms": round(export_ms, 2)}


def folder_bytes(store: FolderRunStore) -> int:
    return sum(p.stat().st_blocks * 512 for p in store.runs_dir.rglob("*") if p.is_file())


def pg_bytes(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_total_relation_size('run_audit')"
                           " + pg_total_relation_size('run_artifacts')"
                           " + pg_total_relation_size('run_signatures')").fetchone()
    return int(row[0]) if row else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    figures: dict[str, object] = {"runs": args.count, "cpus": os.cpu_count(),
                                  "artifact_bytes_per_run": len(PLAN) + len(PATCH)}
    with tempfile.TemporaryDirectory(prefix="gwi-bench-runs-") as folder:
        key = Path(folder) / "key.pem"
        out: dict[str, object] = {}
        for workers in (1, 4):
            store = FolderRunStore(Path(folder) / f"data{workers}", key)
            out[f"writers_{workers}"] = measure(store, args.count, workers)
        out["bytes_per_run"] = folder_bytes(store) // (args.count + 1)
        figures["folder"] = out
        bin_dir = find_bin_dir()
        if bin_dir is None:
            figures["postgres"] = "skipped: PostgreSQL's initdb and pg_ctl are not installed"
        else:
            server = PgServer(bin_dir, fsync=True)
            try:
                out = {}
                for workers in (1, 4):
                    url = server.create_database()
                    pg = PostgresRunStore.connect(url, key)
                    try:
                        out[f"writers_{workers}"] = measure(pg, args.count, workers)
                    finally:
                        pg.close()
                out["bytes_per_run"] = pg_bytes(url) // (args.count + 1)
                figures["postgres"] = out
            finally:
                server.close()
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
