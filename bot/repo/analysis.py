"""Merge analysis: merge the base into the head in memory and run the resolver on each conflict.

Triage reads its counts; the resolve step turns it into the merged tree and the patch; the
review reads the three sides back. It is deterministic (same revisions, same analysis), so each
step may compute it again after a restart.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from bot.merge import MergeResult, merge_bytes
from bot.merge.generated import attributes_say_generated
from bot.repo import plumbing as git
from bot.schemas.triage import MergeFeatures

REGULAR_MODES = frozenset({"100644", "100755"})
#: The names the markers of unresolved regions carry: the head, the merge base, the base.
LABELS = ("head", "merge base", "base")


class ConflictKind(enum.StrEnum):
    CONTENT = "content"  # all sides are text files: the resolver has a go
    UNMERGEABLE = "unmergeable"  # deleted on one side, a symlink or submodule, binary, too large


@dataclass(frozen=True)
class Sides:
    base: bytes  # empty when both sides added the file
    head: bytes
    other: bytes  # the base branch's version


@dataclass(frozen=True)
class FileConflict:
    path: str
    entry: git.ConflictEntry
    kind: ConflictKind
    reason: str  # for people: why it conflicts, or why it cannot be merged as text
    result: MergeResult | None  # the resolver's answer, for content conflicts it did not refuse
    sides: Sides | None  # the three versions, for content conflicts

    @property
    def regions(self) -> int:
        return len(self.result.regions) if self.result else 0

    @property
    def regions_resolved(self) -> int:
        return sum(r.resolved for r in self.result.regions) if self.result else 0

    @property
    def resolved(self) -> bool:
        return self.result is not None and self.result.clean

    @property
    def conflict_lines(self) -> int:
        return sum(r.lines for r in self.result.regions) if self.result else 0


def surfaced_note(conflict: FileConflict) -> str:
    """What the regions git merged cleanly but the resolver shows are, when there are any."""
    shown = sum(r.surfaced for r in conflict.result.regions) if conflict.result else 0
    if not shown:
        return ""
    return (f" ({shown} of them: an older release line's version change, which git merges"
            " without a conflict beside a region settled for the newer line)")


@dataclass(frozen=True)
class MergeAnalysis:
    head_sha: str  # "ours": the pull request's branch
    base_sha: str  # "theirs": the branch it merges into, merged into the head
    merge_base_sha: str | None
    tree_merge: git.TreeMerge
    files: tuple[FileConflict, ...]

    @property
    def clean(self) -> bool:
        return self.tree_merge.clean

    @property
    def up_to_date(self) -> bool:
        """The head already contains the base: merging changes nothing."""
        return self.merge_base_sha == self.base_sha

    def features(self) -> MergeFeatures:
        return MergeFeatures(
            conflicted_files=len(self.files),
            conflict_regions=sum(f.regions for f in self.files),
            conflict_lines=sum(f.conflict_lines for f in self.files),
            max_regions_in_file=max((f.regions for f in self.files), default=0),
            regions_resolvable=sum(f.regions_resolved for f in self.files),
            files_unmergeable=sum(f.kind is ConflictKind.UNMERGEABLE for f in self.files),
        )


def _why_unmergeable(entry: git.ConflictEntry) -> str | None:
    if entry.ours is None:
        return "deleted in the head and changed in the base"
    if entry.theirs is None:
        return "changed in the head and deleted in the base"
    modes = {b.mode for b in (entry.base, entry.ours, entry.theirs) if b is not None}
    if not modes <= REGULAR_MODES:
        return "a symlink or submodule on one side: not merged as text"
    if entry.ours.mode != entry.theirs.mode:
        return "the two sides changed the file mode differently"
    return None


def _marked_generated(repo: Path, commits: tuple[str, ...], paths: list[str]) -> set[str]:
    """The paths a `.gitattributes` (on either side) marks `linguist-generated` or `-diff`:
    files a tool writes, which are regenerated, never merged as text."""
    folders = sorted({"/".join(p.split("/")[:depth]) for p in paths
                      for depth in range(p.count("/") + 1)})
    wanted = [f"{folder}/.gitattributes" if folder else ".gitattributes" for folder in folders]
    attributes: dict[str, str] = {}
    for commit in commits:
        for name, blob in git.read_paths(repo, commit, wanted).items():
            if blob is not None:
                folder = name.rpartition("/")[0]
                text = blob.decode("utf-8", "replace")
                attributes[folder] = attributes.get(folder, "") + "\n" + text
    if not attributes:
        return set()
    return {p for p in paths if attributes_say_generated(attributes, p)}


def analyse(repo: Path, head_sha: str, base_sha: str) -> MergeAnalysis:
    """Merge ``base_sha`` into ``head_sha`` (no work tree touched) and try every conflict."""
    tree_merge = git.merge_trees(repo, head_sha, base_sha)
    contents = git.read_blobs(
        repo,
        [
            blob.oid
            for entry in tree_merge.conflicts
            if _why_unmergeable(entry) is None
            for blob in (entry.base, entry.ours, entry.theirs)
            if blob is not None
        ],
    )
    generated = _marked_generated(repo, (head_sha, base_sha),
                                  [entry.path for entry in tree_merge.conflicts])
    files = []
    for entry in tree_merge.conflicts:
        why = _why_unmergeable(entry)
        if why is not None:
            files.append(FileConflict(entry.path, entry, ConflictKind.UNMERGEABLE, why, None, None))
            continue
        assert entry.ours is not None and entry.theirs is not None
        sides = Sides(
            base=contents[entry.base.oid] if entry.base else b"",
            head=contents[entry.ours.oid],
            other=contents[entry.theirs.oid],
        )
        # histogram: the regions git merge-tree (merge-ort) found, not merge-file's Myers ones
        result = merge_bytes(sides.base, sides.head, sides.other, entry.path, labels=LABELS,
                             diff_algorithm="histogram",
                             attributes_generated=entry.path in generated)
        if result.refused:
            files.append(
                FileConflict(entry.path, entry, ConflictKind.UNMERGEABLE, result.refused, None,
                             None)
            )
            continue
        reason = "added on both sides" if entry.base is None else "both sides changed it"
        files.append(FileConflict(entry.path, entry, ConflictKind.CONTENT, reason, result, sides))
    return MergeAnalysis(
        head_sha=head_sha,
        base_sha=base_sha,
        merge_base_sha=git.merge_base(repo, head_sha, base_sha),
        tree_merge=tree_merge,
        files=tuple(files),
    )
