"""`gwi triage`: score a change between two revisions of a local repository."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "triage", help="score the complexity of merging BASE into HEAD (no run is created)"
    )
    p.add_argument("--repo", type=Path, default=Path("."), help="the repository (default: .)")
    p.add_argument("--base", required=True, help="the branch the change merges into")
    p.add_argument("--head", required=True, help="the branch with the change")
    p.add_argument("--json", action="store_true", help="print the TriageResult as JSON")
    p.set_defaults(func=cmd_triage)


def cmd_triage(args: argparse.Namespace) -> int:
    from bot.repo import plumbing as git
    from bot.repo.analysis import analyse
    from bot.scoring.scorer import extract_features, triage_result

    repo = git.check_repository(args.repo)
    head = git.resolve_commit(repo, args.head)
    base = git.resolve_commit(repo, args.base)
    analysis = analyse(repo, head, base)
    result = triage_result(None, extract_features(repo, analysis))
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    print(render(result))
    return 0


def render(result: object) -> str:
    from bot.schemas.triage import TriageResult

    assert isinstance(result, TriageResult)
    f = result.features
    m = f.merge
    lines = [
        (f"complexity {result.final}/10 -> {result.route.value}"
        f" (baseline {result.baseline}, raw {result.raw_score:g},"
        f" adjustment {result.adjustment.value:+d})"),
        f"  change: {f.files_changed} files, +{f.lines_added} -{f.lines_removed}"
        + (f", {f.renames} renamed" if f.renames else "")
        + (f", {f.deletions} deleted" if f.deletions else ""),
        "  kinds: " + (", ".join(f"{k.value} {n}" for k, n in f.kind_counts.items()) or "none"),
        (f"  merge: {m.conflicted_files} conflicted files, {m.conflict_regions} regions"
        f" ({m.regions_resolvable} resolvable), {m.conflict_lines} conflict lines,"
        f" {m.files_unmergeable} unmergeable"),
        "  rules:",
    ]
    for hit in result.breakdown:
        lines.append(f"    {hit.points:+5.2f}  {hit.rule:<24} {hit.detail}")
    for reason in result.adjustment.reasons:
        lines.append(f"    llm: {reason.value}")
    return "\n".join(lines)
