"""Benchmark of the conflict resolver on ../shared/merge-scenarios: coverage, precision, speed.

Three passes:

1. probe: every strategy is tried alone on every conflict region of every project, and
   each answer is compared with what the maintainers committed (located as score.py
   locates regions). This gives, per project, how often each strategy is right in each kind
   of file, independent of the order in which the engine tries them.
2. leave-one-project-out: for each project P, :func:`choose` picks the enabled
   (strategy, file kind) pairs from the other projects' probe figures only; `gwi
   merge-batch --policy` then runs on P with that choice and score.py scores it. The
   per-project table, the per-strategy precision on held-out projects (which is what the
   shipped confidence is) and the aggregate are printed; a strategy under 90% on a
   project where it fired ten times or more is flagged.
3. shipped: the policy chosen the same way on all projects (bot/merge/confidence.py,
   rewritten by --write-policy) runs on everything, three times for speed, and is scored.

    python bench/merge_bench.py [SCENARIOS] [--out DIR] [--projects a,b] [--write-policy]
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
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIOS = ROOT.parent / "shared" / "merge-scenarios"
RUNS = 3
# A (strategy, kind) pair is enabled when the training projects show, for it:
MIN_FIRED = 5  # at least this many scorable answers in all,
MIN_PRECISION = 0.90  # right at least this often in all,
PROJECT_FLOOR = 0.85  # and at least this often on every project where it was wrong
PROJECT_MIN_WRONG = 2  # this many times or more (one miss in three is not a pattern),
MIN_PROJECTS = 2  # and it answered on at least this many projects: one is not "in general".
# Misses spread over two or more projects are a pattern, however few on each: the pair must
SPREAD_PRECISION = 0.95  # then be right this often in all.
FLAG_FIRED, FLAG_PRECISION = 10, 0.90


def load_score(scenarios: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("score", scenarios / "score.py")
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {scenarios / 'score.py'}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_batches(
    scenarios: Path, out: Path, projects: list[str], policies: dict[str, Path] | None = None
) -> tuple[int, float, float]:
    """Run merge-batch per project in this process: files, wall seconds, CPU seconds."""
    from bot.cli import main

    files = 0
    wall, cpu = time.perf_counter(), time.process_time()
    for project in projects:
        extra = ["--policy", str(policies[project])] if policies else []
        code = main(["merge-batch", str(scenarios / project), str(out / project), *extra])
        if code != 0:
            raise SystemExit(f"merge-batch failed on {project} (exit {code})")
        files += sum(1 for p in (scenarios / project).iterdir() if p.is_dir())
    return files, time.perf_counter() - wall, time.process_time() - cpu


Cell = tuple[str, str]  # (strategy, file kind)
Tally = dict[Cell, dict[str, list[int]]]  # cell -> project -> [right, fired]
MISSES: dict[Cell, list[str]] = {}  # probe answers that were wrong, by cell


def probe(score: ModuleType, scenarios: Path, projects: list[str]) -> Tally:
    """Pass 1: each strategy alone on each scorable region; right or wrong per project."""
    from bot.merge.engine import probe as probe_regions
    from bot.merge.generated import regenerate_with
    from bot.merge.policy import kind

    tally: Tally = collections.defaultdict(dict)
    for project in projects:
        for folder in sorted(p for p in (scenarios / project).iterdir() if p.is_dir()):
            raw = [(folder / w).read_bytes() for w in ("base", "ours", "theirs")]
            if any(b"\0" in x for x in raw):
                continue
            texts = [x.decode("utf-8", "replace").replace("\r\n", "\n") for x in raw]
            path = json.loads((folder / "meta.json").read_text()).get("path", folder.name)
            if regenerate_with(path, (texts[0], texts[1], texts[2])) is not None:
                continue
            regions = probe_regions(texts[0], texts[1], texts[2], path)
            if not any(regions):
                continue
            anchors = score.regions(str(folder))
            if len(anchors) != len(regions):
                continue
            expected = score.norm_lines(
                (folder / "expected").read_bytes().decode("utf-8", "replace")
            )
            for anchor, answers in zip(anchors, regions, strict=True):
                e = score.locate(expected, anchor) if answers else None
                if e is None:
                    continue
                for strategy, lines in answers.items():
                    got = [line.rstrip() for line in "".join(lines).split("\n")]
                    if got and got[-1] == "":
                        got.pop()
                    if anchor[1] is None:  # at the end: score.py drops trailing blank lines
                        while got and got[-1] == "":
                            got.pop()
                    counts = tally[(strategy, kind(path))].setdefault(project, [0, 0])
                    counts[0] += got == e
                    counts[1] += 1
                    if got != e:
                        MISSES.setdefault((strategy, kind(path)), []).append(
                            f"{project}/{folder.name}")
    return tally


def choose(tally: Tally, training: list[str]) -> list[Cell]:
    """The (strategy, kind) pairs enabled when trained on ``training`` projects only.

    A pair is kept when, on the training projects, it answered at least MIN_FIRED scorable
    regions, was right in at least MIN_PRECISION of them, and was right at least
    PROJECT_FLOOR of the time on every project where it was wrong PROJECT_MIN_WRONG times or
    more: a rule must hold on every project that has such files, not on average. It must
    also have answered on MIN_PROJECTS training projects: what one project does is its habit.
    And when it was wrong on two or more training projects, even once each, it must be right
    SPREAD_PRECISION of the time: a miss on most projects that have such files is a pattern.
    """
    chosen = []
    for cell, per in sorted(tally.items()):
        counts = [per[p] for p in training if p in per]
        right = sum(c[0] for c in counts)
        fired = sum(c[1] for c in counts)
        if fired < MIN_FIRED or right < MIN_PRECISION * fired:
            continue
        if any(f - r >= PROJECT_MIN_WRONG and r < PROJECT_FLOOR * f for r, f in counts):
            continue
        if sum(1 for _, f in counts if f) < MIN_PROJECTS:
            continue
        if sum(1 for r, f in counts if r < f) >= 2 and right < SPREAD_PRECISION * fired:
            continue
        chosen.append(cell)
    return chosen


def write_policy_file(path: Path, cells: list[Cell]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"enabled": [list(c) for c in cells]}))
    return path


def render_confidence(cells: list[Cell], measured: dict[str, tuple[int, int]]) -> str:
    """The text of bot/merge/confidence.py for the shipped choice and the LOO precisions."""
    confidence = {s: round(100 * r / f) for s, (r, f) in sorted(measured.items()) if f}
    lines = [
        '"""Generated by `python bench/merge_bench.py --write-policy`; do not edit by hand.',
        "",
        "ENABLED: the (strategy, file kind) pairs the leave-one-project-out procedure keeps when",
        "trained on every shared project. CONFIDENCE: each strategy's leave-one-out region",
        "precision, in percent. MEASURED: the counts behind it (right, fired).",
        '"""',
        "",
        "ENABLED: tuple[tuple[str, str], ...] = (",
        *(f'    ("{s}", "{k}"),' for s, k in cells),
        ")",
        "CONFIDENCE: dict[str, int] = {",
        *(f'    "{s}": {v},' for s, v in confidence.items()),
        "}",
        "MEASURED: dict[str, tuple[int, int]] = {",
        *(f'    "{s}": ({r}, {f}),' for s, (r, f) in sorted(measured.items())),
        "}",
        "",
    ]
    return "\n".join(lines)


class Strategies:
    """Region-level fire counts and precision per strategy and project, from a run's output."""

    def __init__(self) -> None:
        self.fired: collections.Counter[str] = collections.Counter()
        self.right: collections.Counter[str] = collections.Counter()
        self.by_project: collections.Counter[tuple[str, str, bool]] = collections.Counter()
        self.wrong: list[str] = []
        self.engine_seconds = 0.0


def per_strategy(score: ModuleType, scenarios: Path, out: Path, projects: list[str]) -> Strategies:
    """Each settled region of a run, located as score.py locates it: right or wrong."""
    st = Strategies()
    for project in projects:
        rows = {}
        for line in (out / project / "results.jsonl").read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                rows[row["scenario"]] = row
                st.engine_seconds += row.get("seconds", 0.0)
        for name in sorted(rows):
            folder = scenarios / project / name
            # git's regions only: a span gwi shows beside them (a surfaced release-line
            # bump) is not one of score.py's regions.
            shown = set(rows[name].get("surfaced", []))
            strategies = [s for i, s in enumerate(rows[name]["strategies"]) if i not in shown]
            if not any(s != "conflict" for s in strategies):
                continue
            anchors = score.regions(str(folder))
            if len(anchors) != len(strategies):
                st.fired["(regions differ from git's)"] += 1
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
                if g is None or score.has_marker(g):
                    continue  # score.py counts it unresolved (a shown span sits in its anchors)
                st.fired[strategy] += 1
                ok = g == e
                st.by_project[(strategy, project, ok)] += 1
                if ok:
                    st.right[strategy] += 1
                else:
                    st.wrong.append(f"{project}/{name} region {index + 1} ({strategy})")
    return st


def print_strategies(st: Strategies, projects: list[str], title: str) -> list[str]:
    """Print the per-strategy table; return the flags (under 90% where fired 10+ times)."""
    flags = []
    print(f"\n{title}:")
    for strategy, count in sorted(st.fired.items(), key=lambda kv: -kv[1]):
        parts = []
        for p in projects:
            r, w = st.by_project[(strategy, p, True)], st.by_project[(strategy, p, False)]
            if r + w:
                flag = r + w >= FLAG_FIRED and r < FLAG_PRECISION * (r + w)
                parts.append(f"{p} {r}/{r + w}{' !!' if flag else ''}")
                if flag:
                    flags.append(f"{strategy} in {p}: {r}/{r + w} ({r / (r + w):.1%})")
        print(
            f"  {strategy:16s} fired {count:4d}  right {st.right[strategy]:4d}  "
            f"precision {st.right[strategy] / max(count, 1):6.1%}   by project: {'  '.join(parts)}"
        )
    return flags


def project_table(summary: dict[str, Any], projects: list[str]) -> None:
    for project, c in summary["per_project"].items():
        if project not in projects:
            continue
        regions, settled, right = (
            c.get("regions", 0),
            c.get("regions_resolved", 0),
            c.get("regions_correct", 0),
        )
        files, files_right = c.get("files_resolved", 0), c.get("files_correct", 0)
        print(
            f"  {project:11s} coverage {settled / max(regions, 1):6.1%} ({settled}/{regions})"
            f"  precision {right / max(settled, 1):6.1%} ({right}/{settled})"
            f"  files resolved {files}/{c.get('files', 0)}, right {files_right}"
        )


def run_score(scenarios: Path, out: Path, as_json: bool) -> str:
    return subprocess.run(
        [sys.executable, str(scenarios / "score.py"), str(scenarios), str(out),
         *(["--json"] if as_json else [])],
        capture_output=True, text=True, check=True,
    ).stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="?", default=str(DEFAULT_SCENARIOS))
    parser.add_argument("--out", default=str(ROOT / "bench" / "out" / "merge"))
    parser.add_argument("--projects", help="comma-separated subset of project folders")
    parser.add_argument("--write-policy", action="store_true",
                        help="rewrite bot/merge/confidence.py with what this run chose")
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
    score = load_score(scenarios)

    # 1. Every strategy alone on every region.
    tally = probe(score, scenarios, projects)
    print("probe (each strategy alone, scorable regions it answered, right/answered by project):")
    for (strategy, kind), per in sorted(tally.items()):
        r = sum(c[0] for c in per.values())
        f = sum(c[1] for c in per.values())
        split = "  ".join(f"{p} {c[0]}/{c[1]}" for p, c in sorted(per.items()))
        print(f"  {strategy:16s} {kind:8s} {r:4d}/{f:<4d} {r / f:6.1%}   {split}")

    (out.parent).mkdir(parents=True, exist_ok=True)
    (out.parent / "probe.json").write_text(json.dumps({
        "tally": [[list(c), per] for c, per in tally.items()],
        "misses": [[list(c), m] for c, m in MISSES.items()],
    }))

    # 2. Leave one project out: choose on the others, score on it.
    loo_out = out.parent / (out.name + "-loo")
    policies = {}
    print("\nleave-one-project-out choices (enabled strategy/kind pairs, trained without P):")
    for held in projects:
        cells = choose(tally, [p for p in projects if p != held])
        policies[held] = write_policy_file(loo_out / "policies" / f"{held}.json", cells)
        print(f"  without {held:11s} {', '.join(f'{s}/{k}' for s, k in cells)}")
    run_batches(scenarios, loo_out, projects, policies)
    loo = json.loads(run_score(scenarios, loo_out, True))
    print("\nleave-one-project-out, per project (regions; each scored with the choice made "
          "without it):")
    project_table(loo, projects)
    loo_st = per_strategy(score, scenarios, loo_out, projects)
    loo_flags = print_strategies(
        loo_st, projects, "leave-one-project-out, per strategy (its confidence)")
    measured = {s: (loo_st.right[s], n) for s, n in loo_st.fired.items() if not s.startswith("(")}
    floor = min(
        (c.get("regions_correct", 0) / c["regions_resolved"], p)
        for p, c in loo["per_project"].items() if p in projects and c.get("regions_resolved")
    )
    print(
        f"leave-one-project-out: region coverage {loo['region_coverage']:.1%}, region precision "
        f"{loo['region_precision']:.1%} (lowest project {floor[1]} {floor[0]:.1%}); file "
        f"coverage {loo['file_coverage']:.1%}, file precision {loo['file_precision']:.1%}; "
        f"{loo['markers_in_resolved']} resolved files with markers"
    )
    if loo_st.wrong:
        print(f"leave-one-project-out wrong resolutions ({len(loo_st.wrong)}):")
        for item in loo_st.wrong:
            print(f"  {item}")

    # 3. The shipped choice: trained on every project.
    cells = choose(tally, projects)
    text = render_confidence(cells, measured)
    shipped_file = ROOT / "bot" / "merge" / "confidence.py"
    if args.write_policy:
        shipped_file.write_text(text)
        print(f"\nwrote {shipped_file.relative_to(ROOT)}")
    elif shipped_file.read_text() != text:
        print(f"\nNOTE: {shipped_file.relative_to(ROOT)} is not what this run chose; "
              "rerun with --write-policy")
    print(f"\nshipped choice (trained on all {len(projects)} projects): "
          + ", ".join(f"{s}/{k}" for s, k in cells))
    # Three runs, the fastest counts (as timeit does): a shared machine's other load only
    # ever slows a run, and CPU time too grows when another process shares the core.
    shipped_policy = write_policy_file(out.parent / "shipped-policy.json", cells)
    runs = [
        run_batches(scenarios, out, projects, {p: shipped_policy for p in projects})
        for _ in range(RUNS)
    ]
    files, seconds, cpu = min(runs, key=lambda run: run[2])
    summary = json.loads(run_score(scenarios, out, True))
    text = run_score(scenarios, out, False)
    print("score.py on the shipped choice (in-sample: trained on these projects):")
    print(
        "  "
        + "\n  ".join(
            line
            for line in text.splitlines()
            if not line.startswith("  ") and not line.startswith("wrong")
        )
    )
    print("\nper project, shipped choice (regions):")
    project_table(summary, projects)
    st = per_strategy(score, scenarios, out, projects)
    flags = print_strategies(
        st, projects, "strategies, shipped choice (scorable regions settled, matching the "
        "committed resolution)")
    print(f"\nwrong resolutions, shipped choice ({len(st.wrong)}):")
    for item in st.wrong:
        print(f"  {item}")
    engine = st.engine_seconds
    print(
        f"\nspeed: {files / cpu:.0f} files/s on one core ({files} files, {cpu:.2f} s of CPU "
        f"for merge-batch in one process, reading and writing files; best of {RUNS} runs); wall clock "
        f"{files / seconds:.0f} files/s ({seconds:.2f} s, other load on the machine counts "
        f"there); merging alone {files / max(engine, 1e-9):.0f} files/s (wall)"
    )
    print("flags (a strategy under 90% on a project where it fired 10+ times): "
          + ("; ".join([*(f"held out: {f}" for f in loo_flags), *flags]) or "none"))
    print(
        f"overall, shipped choice: region coverage {summary['region_coverage']:.1%}, region "
        f"precision {summary['region_precision']:.1%}; file coverage "
        f"{summary['file_coverage']:.1%}, file precision {summary['file_precision']:.1%}; "
        f"{summary['markers_in_resolved']} resolved files with markers"
    )
    print(
        f"overall, leave-one-project-out: region coverage {loo['region_coverage']:.1%}, region "
        f"precision {loo['region_precision']:.1%} (lowest project {floor[1]} {floor[0]:.1%}); "
        f"file precision {loo['file_precision']:.1%}"
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
        "loo_region_coverage": round(loo["region_coverage"], 4),
        "loo_region_precision": round(loo["region_precision"], 4),
        "loo_lowest_project_precision": round(floor[0], 4),
        "loo_file_precision": round(loo["file_precision"], 4),
        "flags": len(loo_flags) + len(flags),
    }))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
