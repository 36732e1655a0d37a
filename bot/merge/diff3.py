"""Three-way line merge: which spans both sides agree on and which conflict, as git finds them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from bot.merge.diff import Hunk, diff, diff_histogram


@dataclass(frozen=True, slots=True)
class Chunk:
    """A span of the merge: base[base_start:base_end] against the same span of each side.

    ``conflict`` is True when both sides changed it differently; otherwise the merged text is
    ``ours`` (when ``take_theirs`` is False) or ``theirs``.
    """

    base_start: int
    base_end: int
    ours_start: int
    ours_end: int
    theirs_start: int
    theirs_end: int
    conflict: bool
    take_theirs: bool = False


def merge_chunks(
    base: Sequence[Hashable],
    ours: Sequence[Hashable],
    theirs: Sequence[Hashable],
    algorithm: str = "myers",
) -> list[Chunk]:
    """The changed spans of a three-way merge of line ids, in order; unchanged text lies between.

    Hunks of the two sides that overlap or touch in the base form one span; a span both
    sides changed is a conflict unless they made the very same change. ``algorithm`` is
    "myers" (what `git merge-file` uses) or "histogram" (what `git merge` and `git
    merge-tree` use by default).
    """
    if algorithm == "histogram":
        ours_hunks = diff_histogram(base, ours)
        theirs_hunks = diff_histogram(base, theirs)
    else:
        base_counts = Counter(base)
        ours_hunks = diff(base, ours, base_counts)
        theirs_hunks = diff(base, theirs, base_counts)
    chunks: list[Chunk] = []
    i = j = 0
    # Line offset of each side against the base after the hunks consumed so far.
    shift_o = shift_t = 0
    while i < len(ours_hunks) or j < len(theirs_hunks):
        group_o: list[Hunk] = []
        group_t: list[Hunk] = []
        if j >= len(theirs_hunks) or (
            i < len(ours_hunks) and ours_hunks[i][0] <= theirs_hunks[j][0]
        ):
            group_o.append(ours_hunks[i])
            i += 1
        else:
            group_t.append(theirs_hunks[j])
            j += 1
        start = (group_o or group_t)[0][0]
        end = (group_o or group_t)[0][1]
        # Grow the group while a hunk of either side overlaps or touches it.
        while True:
            if i < len(ours_hunks) and ours_hunks[i][0] <= end:
                group_o.append(ours_hunks[i])
                end = max(end, ours_hunks[i][1])
                i += 1
            elif j < len(theirs_hunks) and theirs_hunks[j][0] <= end:
                group_t.append(theirs_hunks[j])
                end = max(end, theirs_hunks[j][1])
                j += 1
            else:
                break
        os_, oe = _span(group_o, start, end, shift_o)
        ts, te = _span(group_t, start, end, shift_t)
        if group_o:
            shift_o = group_o[-1][3] - group_o[-1][1]
        if group_t:
            shift_t = group_t[-1][3] - group_t[-1][1]
        if not group_t:
            chunks.append(Chunk(start, end, os_, oe, ts, te, conflict=False))
        elif not group_o:
            chunks.append(Chunk(start, end, os_, oe, ts, te, conflict=False, take_theirs=True))
        else:
            same = (
                len(group_o) == 1
                and len(group_t) == 1
                and group_o[0][:2] == group_t[0][:2]
                and ours[os_:oe] == theirs[ts:te]
            )
            chunks.append(Chunk(start, end, os_, oe, ts, te, conflict=not same))
    return chunks


def _span(hunks: list[Hunk], start: int, end: int, shift: int) -> tuple[int, int]:
    """The span of a side matching base[start:end], given that side's hunks inside it."""
    if not hunks:
        return start + shift, end + shift
    first, last = hunks[0], hunks[-1]
    return first[2] - (first[0] - start), last[3] + (end - last[1])
