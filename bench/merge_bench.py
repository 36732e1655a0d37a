"""Benchmark of the conflict resolver on ../shared/merge-scenarios: coverage, precision, speed.

Runs `gwi merge-batch` on every project folder in one process, scores the output with the
scenarios' own score.py (file and region level), then reports per project and per
strategy how many regions were settled and how many of those match what the maintainers
committed, the wrong resolutions by name, and files per second.

    python bench/merge_bench.py [SCENARIOS] [--out DIR] [--projects a,b]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIOS = ROOT.parent / "shared" / "merge-scenarios"
RUNS = 3


def load_score(scenarios: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("score", scenarios / "score.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {scenarios / 'score.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_batches(scenarios: Path, out: Path, projects: list[str]) -> tuple[int, float, float]:
    """Run merge-batch per project in this process: files, wall seconds, CPU seconds."""
    from bot.cli import main

    files = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for project in projects:
        code = main(["merge-batch", str(scenarios / project), str(out / project)])
        if code != 0:
            raise SystemExit(f"merge-batch failed on {project} (exit {code})")
        files += sum(1 for p in (scenarios / project).iterdir() if p.is_dir())
    return files, time.perf_counter() - wall, time.process_time() - cpu


def per_strategy(score: ModuleType, scenarios: Path, out: Path, projects: list[str]) -> None:
    """Region-level fire counts and precision per strategy, located as score.py locates."""
    fired: collections.Counter[str] = collections.Counter()
    right: collections.Counter[str] = collections.Counter()
    by_project: collections.Counter[tuple[str, str, bool]] = collections.Counter()
    wrong: list[str] = []
    engine_seconds = 0.0
    for project in projects:
        rows = {}
        for line in (out / project / "results.jsonl").read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["scenario"]] = row
                engine_seconds += row.get("seconds", 0.0)
        for name in sorted(rows):
            folder = scenarios / project / name
            row = rows[name]
            strategies = row["strategies"]
            if not any(s != "conflict" for s in strategies):
                continue
            anchors = score.regions(str(folder))
            if len(anchors) != len(strategies):
                fired["(regions differ from git's)"] += 1
                continue
            expected = score.norm_lines(
                (folder / "expected").read_bytes().decode("utf-8", "replace")
            )
            got = score.norm_lines(
                (out / project / name / "result").read_bytes().decode("utf-8", "replace")
            )
            for index, (anchor, strategy) in enumerate(zip(anchors, strategies, strict=True)):
                if strategy == "conflict":
                    continue
                e = score.locate(expected, anchor)
                if e is None:
                    continue
                g = score.locate(got, anchor)
                fired[strategy] += 1
                ok = g is not None and not score.has_marker(g) and g == e
                by_project[(strategy, project, ok)] += 1
                if ok:
                    right[strategy] += 1
                else:
                    wrong.append(f"{project}/{name} region {index + 1} ({strategy})")
    print("\nstrategies (scorable regions settled, matching the committed resolution):")
    for strategy, count in sorted(fired.items(), key=lambda kv: -kv[1]):
        split = "  ".join(
            f"{p} {by_project[(strategy, p, True)]}/"
            f"{by_project[(strategy, p, True)] + by_project[(strategy, p, False)]}"
            for p in projects
            if by_project[(strategy, p, True)] + by_project[(strategy, p, False)]
        )
        print(
            f"  {strategy:16s} fired {count:4d}  right {right[strategy]:4d}  "
            f"precision {right[strategy] / max(count, 1):6.1%}   by project: {split}"
        )
    print(f"\nwrong resolutions ({len(wrong)}):")
    for item in wrong:
        print(f"  {item}")
    per_strategy.engine_seconds = engine_seconds  # type: ignore[attr-defined]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="?", default=str(DEFAULT_SCENARIOS))
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "merge"))
    parser.add_argument("--projects", help="comma-separated subset of project folders")
    args = parser.parse_args()
    scenarios, out = Path(args.scenarios), Path(args.out)
    if not (scenarios / "score.py").exists():
        print(
            f"bench-merge: skipped: {scenarios} is not there (needs ../shared beside the checkout)"
        )
        print(json.dumps({"bench": "merge", "skipped": f"{scenarios} is not there"}))
        return 0
    projects = sorted(p.name for p in scenarios.iterdir() if p.is_dir())
    if args.projects:
        projects = [p for p in projects if p in args.projects.split(",")]
    # Three runs, the fastest counts (as timeit does): a shared machine's other load only
    # ever slows a run, and CPU time too grows when another process shares the core.
    runs = [run_batches(scenarios, out, projects) for _ in range(RUNS)]
    files, seconds, cpu = min(runs, key=lambda run: run[2])
    score_py = subprocess.run(
        [sys.executable, str(scenarios / "score.py"), str(scenarios), str(out), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    summary = json.loads(score_py.stdout)
    text = subprocess.run(
        [sys.executable, str(scenarios / "score.py"), str(scenarios), str(out)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    print("score.py:")
    print(
        "  "
        + "\n  ".join(
            line
            for line in text.splitlines()
            if not line.startswith("  ") and not line.startswith("wrong")
        )
    )
    print("\nper project (regions):")
    for project, c in summary["per_project"].items():
        if project not in projects:
            continue
        regions, settled, right = (
            c.get("regions", 0),
            c.get("regions_resolved", 0),
            c.get("regions_correct", 0),
        )
        print(
            f"  {project:10s} coverage {settled / max(regions, 1):6.1%} ({settled}/{regions})"
            f"  precision {right / max(settled, 1):6.1%} ({right}/{settled})"
            f"  files resolved {c.get('files_resolved', 0)}/{c.get('files', 0)}"
        )
    per_strategy(load_score(scenarios), scenarios, out, projects)
    engine = per_strategy.engine_seconds  # type: ignore[attr-defined]
    print(
        f"\nspeed: {files / cpu:.0f} files/s on one core ({files} files, {cpu:.2f} s of CPU "
        f"for merge-batch in one process, reading and writing files; best of {RUNS} runs); wall clock "
        f"{files / seconds:.0f} files/s ({seconds:.2f} s, other load on the machine counts "
        f"there); merging alone {files / max(engine, 1e-9):.0f} files/s (wall)"
    )
    print(
        f"overall: region coverage {summary['region_coverage']:.1%}, region precision "
        f"{summary['region_precision']:.1%}; file coverage {summary['file_coverage']:.1%}, "
        f"file precision {summary['file_precision']:.1%}; "
        f"{summary['markers_in_resolved']} resolved files with markers"
    )
    # The figures again, as one JSON line like every benchmark's.
    print(json.dumps({
        "bench": "merge",
        "files": files,
        "files_per_s_cpu": round(files / cpu),
        "files_per_s_wall": round(files / seconds),
        "merging_alone_files_per_s": round(files / max(engine, 1e-9)),
        "region_coverage": round(summary["region_coverage"], 4),
        "region_precision": round(summary["region_precision"], 4),
        "file_coverage": round(summary["file_coverage"], 4),
        "file_precision": round(summary["file_precision"], 4),
        "markers_in_resolved": summary["markers_in_resolved"],
    }))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
