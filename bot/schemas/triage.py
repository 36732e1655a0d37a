"""`triage.json`: the change's features, the rubric's baseline score with its breakdown, the
LLM adjustment and the route."""

from __future__ import annotations

import enum
import math
from typing import Annotated, Literal

from pydantic import Field, model_validator

from bot.schemas.base import Schema
from bot.schemas.common import Count, Name, RepoPath, Text
from bot.schemas.routing import Route, route_for
from bot.schemas.run import RunId


class FileKind(enum.StrEnum):
    """What a path is, by the documented rules of `bot.scoring.paths` (one kind per file)."""

    SECRETS = "secrets"
    BINARY = "binary"
    GENERATED = "generated"
    LOCKFILE = "lockfile"
    DEPENDENCY_MANIFEST = "dependency_manifest"
    CI = "ci"
    INFRASTRUCTURE = "infrastructure"
    MIGRATION = "migration"
    SECURITY = "security"
    TEST = "test"
    DOCS = "docs"
    CONFIG = "config"
    SOURCE = "source"
    OTHER = "other"


class ChangeStatus(enum.StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    DELETED = "deleted"
    RENAMED = "renamed"
    TYPE_CHANGED = "type_changed"


class FileChange(Schema):
    path: RepoPath
    old_path: RepoPath | None = None
    status: ChangeStatus
    kind: FileKind
    added: Count
    removed: Count
    binary: bool = False

    @model_validator(mode="after")
    def _rename_has_old_path(self) -> FileChange:
        if (self.status is ChangeStatus.RENAMED) != (self.old_path is not None):
            raise ValueError("a renamed file, and only a renamed file, has an old_path")
        if self.binary and (self.added or self.removed):
            raise ValueError("a binary file has no line counts")
        return self


class MergeFeatures(Schema):
    """What merging the base into the head looks like, before anything is resolved."""

    conflicted_files: Count
    conflict_regions: Count
    conflict_lines: Count
    max_regions_in_file: Count
    regions_resolvable: Count  # regions the deterministic resolver settles
    files_unmergeable: Count = 0  # binary, too large, or add/delete and rename conflicts

    @model_validator(mode="after")
    def _consistent(self) -> MergeFeatures:
        if self.regions_resolvable > self.conflict_regions:
            raise ValueError("more resolvable regions than regions")
        if self.max_regions_in_file > self.conflict_regions:
            raise ValueError("max_regions_in_file exceeds conflict_regions")
        if self.conflicted_files == 0 and (self.conflict_regions or self.files_unmergeable):
            raise ValueError("conflict regions without conflicted files")
        if self.files_unmergeable > self.conflicted_files:
            raise ValueError("more unmergeable files than conflicted files")
        return self


class ChangeFeatures(Schema):
    files: list[FileChange]
    files_changed: Count
    lines_added: Count
    lines_removed: Count
    renames: Count
    deletions: Count
    kind_counts: dict[FileKind, Count]
    merge: MergeFeatures

    @model_validator(mode="after")
    def _counts_match_files(self) -> ChangeFeatures:
        paths = [f.path for f in self.files]
        if paths != sorted(set(paths)):
            raise ValueError("files must be sorted by path and unique")
        expect = {
            "files_changed": len(self.files),
            "lines_added": sum(f.added for f in self.files),
            "lines_removed": sum(f.removed for f in self.files),
            "renames": sum(f.status is ChangeStatus.RENAMED for f in self.files),
            "deletions": sum(f.status is ChangeStatus.DELETED for f in self.files),
        }
        for field, value in expect.items():
            if getattr(self, field) != value:
                raise ValueError(f"{field} is {getattr(self, field)}, the files say {value}")
        kinds: dict[FileKind, int] = {}
        for f in self.files:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        if self.kind_counts != kinds:
            raise ValueError("kind_counts does not match the files' kinds")
        return self


class RuleHit(Schema):
    """One rubric rule that fired, and what it added to the raw score."""

    rule: Name
    points: float
    detail: Text


class AdjustmentReason(enum.StrEnum):
    # raise
    NEEDS_DOMAIN_KNOWLEDGE = "needs_domain_knowledge"
    AMBIGUOUS_INTENT = "ambiguous_intent"
    MULTI_FILE_COHERENCE = "multi_file_coherence"
    SECURITY_RISK = "security_risk"
    DATA_LOSS_RISK = "data_loss_risk"
    COMPLEX_MERGE_SEMANTICS = "complex_merge_semantics"
    # lower
    CLEAR_INTENT = "clear_intent"
    ISOLATED_CHANGE = "isolated_change"
    STANDARD_PATTERN = "standard_pattern"
    WELL_TESTED = "well_tested"
    DOCUMENTED = "documented"


RAISING_REASONS: frozenset[AdjustmentReason] = frozenset(
    {
        AdjustmentReason.NEEDS_DOMAIN_KNOWLEDGE,
        AdjustmentReason.AMBIGUOUS_INTENT,
        AdjustmentReason.MULTI_FILE_COHERENCE,
        AdjustmentReason.SECURITY_RISK,
        AdjustmentReason.DATA_LOSS_RISK,
        AdjustmentReason.COMPLEX_MERGE_SEMANTICS,
    }
)
LOWERING_REASONS: frozenset[AdjustmentReason] = frozenset(AdjustmentReason) - RAISING_REASONS


class LlmAdjustment(Schema):
    """An LLM's −2..+2 correction of the baseline, justified only by reasons from a fixed enum."""

    value: Annotated[int, Field(ge=-2, le=2)] = 0
    reasons: list[AdjustmentReason] = Field(default_factory=list)

    @model_validator(mode="after")
    def _reasons_fit_direction(self) -> LlmAdjustment:
        if len(set(self.reasons)) != len(self.reasons):
            raise ValueError("adjustment reasons repeat")
        if self.value > 0 and (not self.reasons or not set(self.reasons) <= RAISING_REASONS):
            raise ValueError("a raise needs reasons, all from the raising set")
        if self.value < 0 and (not self.reasons or not set(self.reasons) <= LOWERING_REASONS):
            raise ValueError("a lowering needs reasons, all from the lowering set")
        return self


def round_half_up(value: float) -> int:
    """The rubric's rounding: x.5 goes up, so 2.5 -> 3 (Python's round() would give 2)."""
    return math.floor(value + 0.5)


def clamp_score(value: int) -> int:
    return max(1, min(10, value))


class TriageResult(Schema):
    schema_version: Literal[1] = 1
    run_id: RunId | None  # None only when `gwi triage` scores a change outside any run
    features: ChangeFeatures
    breakdown: list[RuleHit]
    raw_score: float
    baseline: Annotated[int, Field(ge=1, le=10)]
    adjustment: LlmAdjustment
    final: Annotated[int, Field(ge=1, le=10)]
    route: Route

    @model_validator(mode="after")
    def _scores_follow_the_rules(self) -> TriageResult:
        total = sum(hit.points for hit in self.breakdown)
        if not math.isclose(total, self.raw_score, abs_tol=1e-9):
            raise ValueError(f"raw_score {self.raw_score} is not the breakdown's sum {total}")
        if self.baseline != clamp_score(round_half_up(self.raw_score)):
            raise ValueError("baseline must be clamp(round_half_up(raw_score), 1, 10)")
        if self.final != clamp_score(self.baseline + self.adjustment.value):
            raise ValueError("final must be clamp(baseline + adjustment, 1, 10)")
        if self.route is not route_for(self.final):
            raise ValueError(f"score {self.final} routes to {route_for(self.final).value}")
        return self
