"""Features of a change, from two revisions of a local repository and the merge analysis."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from bot.repo import plumbing as git
from bot.schemas.triage import ChangeFeatures, ChangeStatus, FileChange, FileKind, MergeFeatures
from bot.scoring.paths import classify

_STATUS = {
    "A": ChangeStatus.ADDED,
    "M": ChangeStatus.MODIFIED,
    "D": ChangeStatus.DELETED,
    "R": ChangeStatus.RENAMED,
    "T": ChangeStatus.TYPE_CHANGED,
}


def summarise(files: Iterable[FileChange], merge: MergeFeatures) -> ChangeFeatures:
    """Aggregate per-file changes (in any order) into the features the rubric reads."""
    ordered = sorted(files, key=lambda f: f.path)
    kinds: dict[FileKind, int] = {}
    for f in ordered:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    return ChangeFeatures(
        files=ordered,
        files_changed=len(ordered),
        lines_added=sum(f.added for f in ordered),
        lines_removed=sum(f.removed for f in ordered),
        renames=sum(f.status is ChangeStatus.RENAMED for f in ordered),
        deletions=sum(f.status is ChangeStatus.DELETED for f in ordered),
        kind_counts=dict(sorted(kinds.items())),
        merge=merge,
    )


def file_changes(repo: Path, base_sha: str, head_sha: str) -> list[FileChange]:
    """What the pull request changes: the head against its merge base with the base (what
    GitHub's "Files changed" shows)."""
    since = git.merge_base(repo, base_sha, head_sha) or base_sha
    out = []
    for entry in git.diff_entries(repo, since, head_sha):
        binary = entry.added is None
        out.append(
            FileChange(
                path=entry.path,
                old_path=entry.old_path if entry.status == "R" else None,
                status=_STATUS.get(entry.status, ChangeStatus.MODIFIED),
                kind=classify(entry.path, binary=binary),
                added=entry.added or 0,
                removed=entry.removed or 0,
                binary=binary,
            )
        )
    return out
