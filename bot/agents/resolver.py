"""The resolver: the deterministic resolver's answer for each conflicted file, an LLM's proposals
for what it left (when configured and the plan allows), and the merged tree and patch."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from bot.agents.region_record import deterministic_regions, left_regions, llm_regions
from bot.merge.checks import has_conflict_markers, lost_added_lines, parses
from bot.merge.lines import split_lines
from bot.repo import plumbing as git
from bot.repo.analysis import LABELS, ConflictKind, FileConflict, MergeAnalysis, surfaced_note
from bot.schemas.agents import FileProposal
from bot.schemas.common import sha256_hex
from bot.schemas.resolve import (
    FileResolution,
    FileStatus,
    RegionResolution,
    ResolveResult,
    ResolverKind,
)

#: How sure a provably safe strategy is. Not 100: the benchmark's precision is measured, not
#: assumed (docs/merge.md), and a person still approves every patch.
DETERMINISTIC_CONFIDENCE = 90
#: An LLM's own confidence is capped here, and proposals below the floor are not used.
LLM_CONFIDENCE_CAP = 80
LLM_CONFIDENCE_FLOOR = 50
LLM_CONTEXT_LINES = 12


@dataclass(frozen=True)
class FileOutcome:
    conflict: FileConflict
    status: FileStatus
    resolver: ResolverKind
    strategies: tuple[str, ...]
    confidence: int
    explanation: str
    regions_resolved: int
    content: bytes | None  # what goes into the merged tree; None leaves git's choice there
    #: Each region's sides and resolution, as resolve.json records them (None: not known).
    details: tuple[RegionResolution, ...] | None = None

    @property
    def path(self) -> str:
        return self.conflict.path

    def text(self) -> str | None:
        return None if self.content is None else self.content.decode("utf-8", "surrogateescape")


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def deterministic_outcome(conflict: FileConflict) -> FileOutcome:
    """What the deterministic resolver made of a conflicted file."""
    result = conflict.result
    if conflict.kind is ConflictKind.UNMERGEABLE or result is None:
        return FileOutcome(conflict, FileStatus.UNRESOLVED, ResolverKind.NONE, (), 0,
                           f"left to a person: {conflict.reason}", 0, None, ())
    details = deterministic_regions(conflict)
    strategies = tuple(dict.fromkeys(r.strategy.value for r in result.regions if r.resolved))
    if result.clean:
        how = "; ".join(dict.fromkeys(r.explanation for r in result.regions)) or "merged"
        return FileOutcome(conflict, FileStatus.RESOLVED, ResolverKind.DETERMINISTIC,
                           strategies, result.confidence, how, conflict.regions,
                           result.to_bytes(), details)
    left = conflict.regions - conflict.regions_resolved
    return FileOutcome(
        conflict, FileStatus.UNRESOLVED,
        ResolverKind.DETERMINISTIC if conflict.regions_resolved else ResolverKind.NONE,
        strategies, 0,
        f"{left} of {conflict.regions} regions have no provably safe resolution; they keep"
        f" their conflict markers{surfaced_note(conflict)}", conflict.regions_resolved,
        result.to_bytes(), details,
    )



def left_alone(conflict: FileConflict, why: str) -> FileOutcome:
    """A conflicted file gwi must not resolve: git's own conflict stays in the tree."""
    return FileOutcome(conflict, FileStatus.UNRESOLVED, ResolverKind.NONE, (), 0,
                       f"left to a person: {why}", 0, None, left_regions(conflict, why))


# -- LLM proposals -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    """One unresolved region in a merged text: the line range of its markers and its sides."""

    start: int
    end: int
    head: str
    base: str
    other: str


def conflict_blocks(text: str) -> list[Block]:
    """The diff3 blocks the resolver left in ``text``, found by their exact marker lines."""
    lines = split_lines(text)
    opens, mids, seps, closes = (f"<<<<<<< {LABELS[0]}", f"||||||| {LABELS[1]}", "=======",
                                 f">>>>>>> {LABELS[2]}")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].rstrip("\r\n") != opens:
            i += 1
            continue
        try:
            mid = next(j for j in range(i + 1, len(lines)) if lines[j].rstrip("\r\n") == mids)
            sep = next(j for j in range(mid + 1, len(lines)) if lines[j].rstrip("\r\n") == seps)
            end = next(j for j in range(sep + 1, len(lines)) if lines[j].rstrip("\r\n") == closes)
        except StopIteration:
            break
        blocks.append(Block(i, end + 1, "".join(lines[i + 1 : mid]),
                            "".join(lines[mid + 1 : sep]), "".join(lines[sep + 1 : end])))
        i = end + 1
    return blocks


def llm_request(conflict: FileConflict) -> tuple[str, str]:
    """The system and user prompt asking for the regions the deterministic resolver left."""
    assert conflict.result is not None
    text = conflict.result.text
    lines = split_lines(text)
    regions = []
    for index, block in enumerate(conflict_blocks(text)):
        before = "".join(lines[max(0, block.start - LLM_CONTEXT_LINES) : block.start])
        after = "".join(lines[block.end : block.end + LLM_CONTEXT_LINES])
        regions.append({"region": index, "context_before": before, "head": block.head,
                        "merge_base": block.base, "base_branch": block.other,
                        "context_after": after})
    system = (
        "You resolve git merge conflicts in a pull request. The pull request's branch (head) is"
        " being updated with its base branch. For each conflict region you are given the head's"
        " lines, the merge base's lines and the base branch's lines, with context. Answer with"
        " one JSON object only, no prose and no code fences, matching this JSON Schema: "
        + json.dumps(FileProposal.model_json_schema(), sort_keys=True)
        + ". `resolution` is the exact text that replaces the whole region (every line ends with"
        " a newline), keeping the intent of both sides; never include conflict markers. Leave a"
        " region out when you are not sure; give an honest `confidence` from 0 to 100."
    )
    prompt = json.dumps({"path": conflict.path, "regions": regions}, indent=1)
    return system, prompt


def apply_proposal(base: FileOutcome, proposal: FileProposal,
                   model: str | None = None) -> FileOutcome:
    """Splice an LLM's proposals into the file and keep them only if every check passes;
    ``model`` names the LLM, recorded on each region it settled."""
    conflict = base.conflict
    assert conflict.result is not None and conflict.sides is not None
    text = conflict.result.text
    blocks = conflict_blocks(text)

    def refuse(why: str) -> FileOutcome:
        return replace(base, explanation=f"{base.explanation}; the LLM's proposal was not used:"
                       f" {why}")

    chosen = {p.region: p for p in proposal.regions}
    if sorted(chosen) != list(range(len(blocks))):
        return refuse(f"it answered {len(chosen)} of {len(blocks)} regions")
    if min(p.confidence for p in proposal.regions) < LLM_CONFIDENCE_FLOOR:
        return refuse("it was not confident enough")
    lines = split_lines(text)
    out: list[str] = []
    at = 0
    for index, block in enumerate(blocks):
        out.extend(lines[at : block.start])
        resolution = chosen[index].resolution
        if resolution and not resolution.endswith("\n"):
            resolution += "\n"
        out.append(resolution)
        at = block.end
    out.extend(lines[at:])
    merged = "".join(out)
    base_text, head, other = (_decode(s) for s in (conflict.sides.base, conflict.sides.head,
                                                   conflict.sides.other))
    if has_conflict_markers(merged) and not (has_conflict_markers(head) or
                                             has_conflict_markers(other)):
        return refuse("it left conflict markers")
    if parses(conflict.path, merged) is False and parses(conflict.path, head) and parses(
        conflict.path, other
    ):
        return refuse("the result does not parse")
    lost = lost_added_lines(base_text, head, other, merged)
    if lost:
        return refuse(f"it drops {len(lost)} line(s) a side added, e.g. {lost[0].strip()[:80]!r}")
    confidence = min(LLM_CONFIDENCE_CAP, min(p.confidence for p in proposal.regions))
    why = "; ".join(p.explanation for p in proposal.regions)
    ordered = sorted(proposal.regions, key=lambda p: p.region)
    details = llm_regions(conflict, ordered, model, merged, LLM_CONFIDENCE_CAP) if model else None
    return FileOutcome(conflict, FileStatus.RESOLVED, ResolverKind.LLM,
                       (*base.strategies, "llm"), confidence, f"LLM proposal: {why}",
                       conflict.regions, merged.encode("utf-8", "surrogateescape"), details)


# -- the merged tree and the patch ---------------------------------------------------------------

def patch_header(run_id: str, analysis: MergeAnalysis) -> bytes:
    """The lines `patch.diff` starts with (git apply skips them): they bind the patch, and so its
    hash, to this run and to the exact head and base it was made for. Two runs never share a
    hash, so an approval of one run can never approve another, even when the diffs agree."""
    return (f"gwi patch for run {run_id}\n"
            f"head {analysis.head_sha}\n"
            f"base {analysis.base_sha}\n\n").encode()


@dataclass(frozen=True)
class Resolution:
    tree: str
    patch: bytes
    result: ResolveResult
    outcomes: tuple[FileOutcome, ...]


def build_resolution(
    repo: Path, run_id: str, analysis: MergeAnalysis, outcomes: Mapping[str, FileOutcome]
) -> Resolution:
    """Put every outcome into git's merged tree and diff it against the head."""
    writes = [o for o in outcomes.values() if o.content is not None]
    oids = git.write_blobs(repo, [o.content for o in writes if o.content is not None])
    files: dict[str, git.Blob | None] = {}
    for outcome, oid in zip(writes, oids, strict=True):
        mode = outcome.conflict.entry.ours.mode if outcome.conflict.entry.ours else "100644"
        files[outcome.path] = git.Blob(mode, oid)
    tree = git.tree_with(repo, analysis.tree_merge.tree, files) if files else (
        analysis.tree_merge.tree)
    patch = patch_header(run_id, analysis) + git.diff_patch(repo, analysis.head_sha, tree)
    rows = [
        FileResolution(path=o.path, status=o.status, resolver=o.resolver,
                       strategies=list(o.strategies), confidence=o.confidence,
                       explanation=o.explanation[:3900], regions=o.conflict.regions,
                       regions_resolved=o.regions_resolved,
                       region_details=None if o.details is None else list(o.details))
        for o in outcomes.values()
    ]
    for entry in git.diff_entries(repo, analysis.head_sha, tree):
        if entry.path not in outcomes:
            rows.append(FileResolution(path=entry.path, status=FileStatus.MERGED_CLEANLY,
                                       resolver=ResolverKind.GIT, confidence=100,
                                       explanation="merged by git without conflict",
                                       regions=0, regions_resolved=0))
    rows.sort(key=lambda r: r.path)
    result = ResolveResult(
        run_id=run_id,
        base_sha=analysis.base_sha,
        head_sha=analysis.head_sha,
        merge_base_sha=analysis.merge_base_sha,
        files=rows,
        files_total=len(rows),
        files_resolved=sum(r.status is FileStatus.RESOLVED for r in rows),
        files_unresolved=sum(r.status is FileStatus.UNRESOLVED for r in rows),
        clean=all(r.status is not FileStatus.UNRESOLVED for r in rows),
        patch_sha256=sha256_hex(patch),
        patch_bytes=len(patch),
    )
    return Resolution(tree=tree, patch=patch, result=result, outcomes=tuple(outcomes.values()))
