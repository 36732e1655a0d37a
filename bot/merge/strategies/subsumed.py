"""One side's edit already contains the other's: keep the side that did more."""

from __future__ import annotations

from collections import Counter

from bot.merge.hazards import blank_only_change, related_edits
from bot.merge.model import Conflict, Resolution, Strategy
from bot.merge.tokens import distance, tokenize

_MAX_TOKENS = 3000
# Regions this long have more tokens than the limit in practice; checked before tokenizing.
_MAX_CHARS = 30_000


def _may_contain(base: list[str], ours: list[str], theirs: list[str]) -> bool:
    """A quick necessary-looking test on token counts before the diffs (a speed filter).

    When one side's edit lies inside the other's, its added and removed tokens are
    usually among the other's; when neither holds, skip the three diffs.
    """
    sb, so, st = set(base), set(ours), set(theirs)
    # Necessary for the counts below, and cheap: what one side adds, the other has; what
    # one side removes entirely, the other does not keep.
    if not ((so - sb <= st and not (sb - so) & st) or (st - sb <= so and not (sb - st) & so)):
        return False
    b, o, t = Counter(base), Counter(ours), Counter(theirs)
    o_add, o_del, t_add, t_del = o - b, b - o, t - b, b - t
    return (o_add <= t_add and o_del <= t_del) or (t_add <= o_add and t_del <= o_del)


def resolve(c: Conflict) -> Resolution | None:
    """Keep side A when side B's version lies on a shortest edit path from base to A.

    Token edit distances then add up: d(base, B) + d(B, A) == d(base, A). Every token B
    inserted is in A, and every token B deleted is gone from A; A made B's change and
    more, so taking A loses nothing B did. Regions where a side only moves blank lines,
    or where the edits look related (same new names, renames), are left alone.
    """
    if not c.base:
        return None  # both sides inserted here: containment says nothing about order
    if max(sum(map(len, lines)) for lines in (c.base, c.ours, c.theirs)) > _MAX_CHARS:
        return None
    base, ours, theirs = tokenize(c.base), tokenize(c.ours), tokenize(c.theirs)
    if max(len(base), len(ours), len(theirs)) > _MAX_TOKENS:
        return None
    if not _may_contain(base, ours, theirs):
        return None
    if [t for t in ours if not t.isspace()] == [t for t in theirs if not t.isspace()]:
        return None  # the sides differ only in layout: a matter of taste, not containment
    if blank_only_change(c.base, c.ours, c.theirs) or related_edits(c.base, c.ours, c.theirs):
        return None
    d_ours, d_theirs, d_between = (
        distance(base, ours),
        distance(base, theirs),
        distance(ours, theirs),
    )
    if d_ours == 0 or d_theirs == 0 or d_between == 0:
        return None
    if d_ours + d_between == d_theirs:
        keep, side, other = list(c.theirs), "theirs", "ours"
    elif d_theirs + d_between == d_ours:
        keep, side, other = list(c.ours), "ours", "theirs"
    else:
        return None
    return Resolution(
        lines=keep,
        strategy=Strategy.SUBSUMED,
        explanation=f"{side.capitalize()} already contains {other}' change to these lines "
        "and goes further; kept " + side + ".",
    )
