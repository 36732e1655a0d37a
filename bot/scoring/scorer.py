"""Triage: features of a change, the rubric's baseline, an optional LLM adjustment, the route."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bot.schemas.routing import route_for
from bot.schemas.triage import ChangeFeatures, LlmAdjustment, TriageResult, clamp_score
from bot.scoring.features import file_changes, summarise
from bot.scoring.rubric import score

if TYPE_CHECKING:
    from bot.repo.analysis import MergeAnalysis


def extract_features(repo: Path, analysis: MergeAnalysis) -> ChangeFeatures:
    """The change's features: its files (against the merge base) and its merge conflicts."""
    return summarise(
        file_changes(repo, analysis.base_sha, analysis.head_sha), analysis.features()
    )


def triage_result(
    run_id: str | None, features: ChangeFeatures, adjustment: LlmAdjustment | None = None
) -> TriageResult:
    """Score the features; ``adjustment`` is the LLM's (none offline: 0 with no reasons)."""
    base = score(features)
    adjust = adjustment or LlmAdjustment()
    final = clamp_score(base.baseline + adjust.value)
    return TriageResult(
        run_id=run_id,
        features=features,
        breakdown=list(base.breakdown),
        raw_score=base.raw,
        baseline=base.baseline,
        adjustment=adjust,
        final=final,
        route=route_for(final),
    )
