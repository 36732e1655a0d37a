"""`make bench-pipeline`: a whole local run (triage to review) on a pull request of 200 conflicted files.

Generates a repository (`bench/conflicts.py`) whose feature branch conflicts with main in 200
files of five kinds, among 1,000 others; runs the offline engine on it from a queued run to
its stop, timing each stage; and times plain `git merge` of the same branches in a work tree,
the floor any merge tool starts from. Each is the best of three tries. Prints one JSON line.
Target: the whole run under 10 seconds on the machine it runs on.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 10.0
#: Each step is named for the state it starts from.
STAGES = {"queued": "triage", "triaged": "plan", "planned": "route", "resolving": "resolve",
          "review": "review"}


def engine_run(data: Path, repo: Path) -> dict[str, Any]:
    """One run from created to its stop; seconds in total and per stage."""
    from bot.engine.local import start_local_run
    from bot.engine.pipeline import Engine
    from bot.runs.folder_store import FolderRunStore
    from bot.schemas.resolve import ResolveResult
    from bot.schemas.run import AgentConfig, Provider

    store = FolderRunStore(data, data / "signing-key.pem")
    started = time.perf_counter()
    run_id = start_local_run(store, repo, "main", "feature", "bench", AgentConfig(provider=Provider.OFFLINE))
    stages: dict[str, float] = {"create": round(time.perf_counter() - started, 3)}
    last = time.perf_counter()

    def timed(ctx: Any) -> None:
        nonlocal last
        now = time.perf_counter()
        stages[STAGES[ctx.history[-2].state.value]] = round(now - last, 3)
        last = now

    ctx = Engine(store).advance(run_id, on_step=timed)
    seconds = time.perf_counter() - started
    resolved = store.read_model(run_id, "resolve.json", ResolveResult)
    statuses = Counter(f.status.value for f in resolved.files) if resolved else Counter()
    return {"seconds": seconds, "stages": stages, "state": ctx.state.value,
            "outcome": ctx.outcome.value if ctx.outcome else None, "files": dict(statuses)}


def git_merge(repo: Path) -> float:
    """Plain `git merge main` into feature in a work tree, conflicts and all; then undone."""
    from conflicts import GIT_ENV

    env = {**GIT_ENV, "PATH": "/usr/bin:/bin"}
    subprocess.run(["git", "-C", str(repo), "checkout", "-q", "feature"], check=True, env=env)
    started = time.perf_counter()
    merge = subprocess.run(["git", "-C", str(repo), "merge", "-q", "--no-edit", "main"],
                           capture_output=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if merge.returncode != 1:
        raise SystemExit(f"git merge should conflict: {merge.stdout!r} {merge.stderr!r}")
    subprocess.run(["git", "-C", str(repo), "merge", "--abort"], check=True, env=env)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--files", type=int, default=200, help="conflicted files (200)")
    parser.add_argument("--others", type=int, default=1000, help="files nobody conflicts on")
    parser.add_argument("--tries", type=int, default=3, help="tries of each; the best counts")
    args = parser.parse_args()
    from conflicts import make_repo

    with tempfile.TemporaryDirectory(prefix="gwi-bench-pipeline-") as tmp:
        repo = Path(tmp) / "repo"
        make_repo(repo, args.files, others=args.others)
        runs = [engine_run(Path(tmp) / f"data-{n}", repo) for n in range(args.tries)]
        merges = [git_merge(repo) for _ in range(args.tries)]
    best = min(runs, key=lambda r: r["seconds"])
    outcomes = {(r["state"], r["outcome"]) for r in runs}
    assert len(outcomes) == 1, f"the runs ended differently: {outcomes}"
    merge_seconds = min(merges)
    print(json.dumps({
        "bench": "pipeline",
        "conflicted_files": args.files,
        "other_files": args.others,
        "seconds": round(best["seconds"], 3),
        "stages_s": best["stages"],
        "state": best["state"],
        "outcome": best["outcome"],
        "files": best["files"],
        "git_merge_s": round(merge_seconds, 3),
        "ratio_to_git_merge": round(best["seconds"] / merge_seconds, 1),
        "tries": [round(r["seconds"], 3) for r in runs],
        "targets": {"under_10s": best["seconds"] < TARGET_SECONDS},
    }))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
