"""The complexity rubric: named rules with their points and when they fire, and the baseline.

The baseline is the sum of the points of every rule that fired, rounded half up and clamped to
1..10 (`bot.schemas.triage.round_half_up`, `clamp_score`). Every rule only ever adds points for
more of something (or takes its discount away), so a change that only grows never scores lower.
`docs/complexity-rubric.md` holds the same table; a test keeps them in step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.schemas.triage import (
    ChangeFeatures,
    FileKind,
    RuleHit,
    clamp_score,
    round_half_up,
)

DOCS_AND_TESTS = frozenset({FileKind.DOCS, FileKind.TEST})
MEDIUM_CHANGE_LINES = 50
LARGE_CHANGE_LINES = 500
MANY_FILES = 10
VERY_MANY_FILES = 50
LARGE_CONFLICT_LINES = 100
DENSE_CONFLICT_REGIONS = 5
MULTI_FILE_CONFLICT = 3


@dataclass(frozen=True)
class Rule:
    """A rule adds ``points`` once when ``count`` is positive, or ``points`` per unit up to
    ``cap`` when it is a per-unit rule (``cap`` set)."""

    name: str
    points: float
    when: str  # the condition, as the docs table says it
    count: Callable[[ChangeFeatures], int]
    cap: float | None = None

    def contribution(self, features: ChangeFeatures) -> tuple[float, int]:
        n = self.count(features)
        if n <= 0:
            return 0.0, 0
        if self.cap is None:
            return self.points, n
        return min(self.cap, self.points * n), n


def _kinds(f: ChangeFeatures, *kinds: FileKind) -> int:
    return sum(f.kind_counts.get(k, 0) for k in kinds)


def _lines(f: ChangeFeatures) -> int:
    return f.lines_added + f.lines_removed


def _unresolved(f: ChangeFeatures) -> int:
    return f.merge.conflict_regions - f.merge.regions_resolvable


RULES: tuple[Rule, ...] = (
    Rule("base", 1.0, "always", lambda f: 1),
    Rule(
        "docs_or_tests_only", -1.0,
        "no changed file is anything but documentation or a test, and the resolver settles every"
        " conflict",
        lambda f: int(_kinds(f, *DOCS_AND_TESTS) == f.files_changed
                      and _unresolved(f) + f.merge.files_unmergeable == 0),
    ),
    Rule("medium_change", 0.5, f"more than {MEDIUM_CHANGE_LINES} lines added and removed",
         lambda f: int(_lines(f) > MEDIUM_CHANGE_LINES)),
    Rule("large_change", 1.0, f"more than {LARGE_CHANGE_LINES} lines added and removed",
         lambda f: int(_lines(f) > LARGE_CHANGE_LINES)),
    Rule("many_files", 0.5, f"more than {MANY_FILES} files changed",
         lambda f: int(f.files_changed > MANY_FILES)),
    Rule("very_many_files", 1.0, f"more than {VERY_MANY_FILES} files changed",
         lambda f: int(f.files_changed > VERY_MANY_FILES)),
    Rule("renames_or_deletions", 0.5, "a file was renamed or deleted",
         lambda f: f.renames + f.deletions),
    Rule("dependency_change", 0.5, "a dependency manifest or lockfile changed",
         lambda f: _kinds(f, FileKind.DEPENDENCY_MANIFEST, FileKind.LOCKFILE)),
    Rule("binary_or_generated", 0.5, "a binary or generated file changed",
         lambda f: _kinds(f, FileKind.BINARY, FileKind.GENERATED)),
    Rule("ci_change", 1.0, "a CI workflow changed", lambda f: _kinds(f, FileKind.CI)),
    Rule("infrastructure_change", 1.0, "deployment or infrastructure files changed",
         lambda f: _kinds(f, FileKind.INFRASTRUCTURE)),
    Rule("migration_change", 1.5, "a database migration changed",
         lambda f: _kinds(f, FileKind.MIGRATION)),
    Rule("security_code", 1.5, "authentication or security code changed",
         lambda f: _kinds(f, FileKind.SECURITY)),
    Rule("secrets_material", 2.5, "a file that holds keys or credentials changed",
         lambda f: _kinds(f, FileKind.SECRETS)),
    Rule("conflicts", 1.0, "merging the base into the head conflicts",
         lambda f: f.merge.conflicted_files),
    Rule("resolvable_regions", 0.25, "each conflict region the deterministic resolver settles",
         lambda f: f.merge.regions_resolvable, cap=1.0),
    Rule("unresolved_regions", 1.5,
         "a conflict region (or a whole file) the deterministic resolver cannot settle",
         lambda f: _unresolved(f) + f.merge.files_unmergeable),
    Rule("unresolved_region_count", 0.5, "each conflict region the resolver cannot settle",
         _unresolved, cap=3.0),
    Rule("unmergeable_files", 1.5,
         "each file that cannot be merged as text (binary, deleted on one side, too large)",
         lambda f: f.merge.files_unmergeable, cap=3.0),
    Rule("large_conflict", 1.0, f"more than {LARGE_CONFLICT_LINES} lines in conflict",
         lambda f: int(f.merge.conflict_lines > LARGE_CONFLICT_LINES)),
    Rule("dense_conflict", 0.5, f"one file has {DENSE_CONFLICT_REGIONS} or more conflict regions",
         lambda f: int(f.merge.max_regions_in_file >= DENSE_CONFLICT_REGIONS)),
    Rule("multi_file_conflict", 0.5, f"{MULTI_FILE_CONFLICT} or more files conflict",
         lambda f: int(f.merge.conflicted_files >= MULTI_FILE_CONFLICT)),
)


def _detail(rule: Rule, n: int, points: float) -> str:
    if rule.cap is not None:
        capped = " (capped)" if points == rule.cap and rule.points * n > rule.cap else ""
        return f"{rule.when}: {n} x {rule.points:+g}{capped}"
    return rule.when


@dataclass(frozen=True)
class Score:
    breakdown: tuple[RuleHit, ...]
    raw: float
    baseline: int


def score(features: ChangeFeatures) -> Score:
    """The deterministic baseline: every rule that fired, in rubric order, and their sum."""
    hits = []
    for rule in RULES:
        points, n = rule.contribution(features)
        if n:
            hits.append(RuleHit(rule=rule.name, points=points, detail=_detail(rule, n, points)))
    raw = sum(hit.points for hit in hits)
    return Score(breakdown=tuple(hits), raw=raw, baseline=clamp_score(round_half_up(raw)))
