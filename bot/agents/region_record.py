"""What `resolve.json` records about each conflict region: its three sides as git left them, and
how gwi settled it, with the strategy, the explanation and the checks it passed, or that it was
left to a person (the run page shows them side by side)."""

from __future__ import annotations

from collections.abc import Sequence

from bot.merge import Region
from bot.merge.checks import has_conflict_markers, parses
from bot.repo.analysis import FileConflict
from bot.schemas.agents import RegionProposal
from bot.schemas.resolve import REGION_TEXT_LIMIT, RegionCheck, RegionResolution, ResolverKind

#: What the merge engine checks on every region it settles (bot.merge.engine._passes).
REGION_CHECKS = (RegionCheck.NO_CONFLICT_MARKERS, RegionCheck.NO_LOST_LINES,
                 RegionCheck.LINE_ENDS)


def _cut(text: str | None) -> tuple[str | None, bool]:
    if text is None or len(text) <= REGION_TEXT_LIMIT:
        return text, False
    return text[:REGION_TEXT_LIMIT], True


def _record(region: Region, resolver: ResolverKind, resolution: str | None, *,
            strategy: str | None, explanation: str, confidence: int,
            checks: Sequence[RegionCheck], model: str | None = None) -> RegionResolution:
    texts = [_cut(t) for t in (region.base_text, region.ours_text, region.theirs_text,
                               resolution)]
    base, ours, theirs, settled = (t for t, _ in texts)
    return RegionResolution(
        index=region.index, base=base or "", ours=ours or "", theirs=theirs or "",
        resolution=settled, resolver=resolver, strategy=strategy,
        explanation=explanation[:3900], confidence=confidence, checks=list(checks),
        model=model, cut=any(cut for _, cut in texts), surfaced=region.surfaced,
    )


def deterministic_regions(conflict: FileConflict) -> tuple[RegionResolution, ...]:
    """Each region as the deterministic resolver left it (none for a file it refused)."""
    result = conflict.result
    if result is None:
        return ()
    parsed = result.clean and parses(conflict.path, result.text) is True
    checks = (*REGION_CHECKS, RegionCheck.PARSES) if parsed else REGION_CHECKS
    return tuple(
        _record(r, ResolverKind.DETERMINISTIC, r.resolution, strategy=r.strategy.value,
                explanation=r.explanation, confidence=r.confidence, checks=checks)
        if r.resolved and r.resolution is not None else
        _record(r, ResolverKind.NONE, None, strategy=None, explanation=r.explanation,
                confidence=0, checks=())
        for r in result.regions
    )


def left_regions(conflict: FileConflict, why: str) -> tuple[RegionResolution, ...]:
    """Every region of a file gwi must not resolve, left to a person with the reason."""
    regions = conflict.result.regions if conflict.result else ()
    return tuple(_record(r, ResolverKind.NONE, None, strategy=None, explanation=why,
                         confidence=0, checks=()) for r in regions)


def llm_regions(conflict: FileConflict, proposals: Sequence[RegionProposal], model: str,
                merged: str, confidence_cap: int) -> tuple[RegionResolution, ...] | None:
    """The regions once an LLM's proposals (one per region the resolver left, in order) were
    kept; None when they cannot be matched to the regions one to one."""
    if conflict.result is None:
        return None
    regions = conflict.result.regions
    left = [r for r in regions if not r.resolved]
    if len(left) != len(proposals):
        return None
    checks = [RegionCheck.NO_LOST_LINES]
    if not has_conflict_markers(merged):
        checks.insert(0, RegionCheck.NO_CONFLICT_MARKERS)
    if parses(conflict.path, merged) is True:
        checks.append(RegionCheck.PARSES)
    by_region = {r.index: p for r, p in zip(left, proposals, strict=True)}
    settled = deterministic_regions(conflict)
    out = []
    for region, done in zip(regions, settled, strict=True):
        proposal = by_region.get(region.index)
        if proposal is None:
            out.append(done)
            continue
        text = proposal.resolution
        if text and not text.endswith("\n"):
            text += "\n"
        out.append(_record(region, ResolverKind.LLM, text, strategy="llm",
                           explanation=proposal.explanation,
                           confidence=min(confidence_cap, proposal.confidence), checks=checks,
                           model=model))
    return tuple(out)
