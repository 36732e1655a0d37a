"""Signs that two edits of one region are related, so combining them mechanically is unsafe."""

from __future__ import annotations

from collections.abc import Sequence

from bot.merge.tokens import line_hunks, subwords


def blank_only_change(base: Sequence[str], ours: Sequence[str], theirs: Sequence[str]) -> bool:
    """Whether a side adds or removes only blank lines somewhere in the region.

    Blank lines are layout: where a person wants them after a merge is a matter of taste
    that no rule predicts, so regions with such edits stay conflicts.
    """
    for side in (ours, theirs):
        for start, end, s_start, s_end in line_hunks(base, side):
            changed = [*base[start:end], *side[s_start:s_end]]
            if all(not line.strip() for line in changed):
                return True
    return False


def related_edits(base: Sequence[str], ours: Sequence[str], theirs: Sequence[str]) -> str | None:
    """Why the two sides' edits look related, or None.

    - both sides introduce the same new word (the same import, test or key added twice,
      or the same fix written two ways), so keeping both would duplicate it;
    - a word that one side removed from the region appears in what the other side added
      (a rename or a move the other side's new text still uses).
    """
    known = subwords(base)
    added: list[set[str]] = []
    removed: list[set[str]] = []
    for side in (ours, theirs):
        new: set[str] = set()
        old: set[str] = set()
        for start, end, s_start, s_end in line_hunks(base, side):
            new |= subwords(side[s_start:s_end])
            old |= subwords(base[start:end])
        added.append(new)
        removed.append(old - subwords(side))
    if (added[0] - known) & (added[1] - known):
        return "both sides add the same new names"
    if removed[0] & added[1] or removed[1] & added[0]:
        return "one side removes a name the other side's new lines use"
    return None
