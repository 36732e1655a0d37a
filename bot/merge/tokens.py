"""Words and symbols inside conflict regions, and merging or comparing them three ways."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

from bot.merge.diff import Hunk, diff
from bot.merge.diff3 import Chunk, merge_chunks

# A token is a word (letters, digits, underscores, joined by dots or dashes so that a
# version like 2.0.0-beta.1 or a dotted name stays whole), a newline, a run of other
# whitespace, or one other character.
_TOKEN = re.compile(r"\w+(?:[.\-]\w+)*|\n|[^\S\n]+|.", re.DOTALL)
_SUBWORD = re.compile(r"[A-Za-z0-9]+")


def tokenize(lines: Sequence[str]) -> list[str]:
    """The tokens of some lines; joining them gives the lines back."""
    return _TOKEN.findall("".join(lines))


def ids(*seqs: Sequence[str]) -> list[list[int]]:
    """Each sequence as ids, equal items getting equal ids across all of them."""
    table = {x: i for i, x in enumerate(dict.fromkeys(chain(*seqs)))}
    return [[table[x] for x in seq] for seq in seqs]


def distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Items deleted plus items inserted by the diff from ``a`` to ``b``."""
    ia, ib = ids(a, b)
    return sum(h[1] - h[0] + h[3] - h[2] for h in diff(ia, ib))


def subwords(lines: Sequence[str]) -> set[str]:
    """Lower-cased alphanumeric pieces of three or more characters (``getUser`` -> ``getuser``)."""
    return {w.lower() for line in lines for w in _SUBWORD.findall(line) if len(w) >= 3}


@dataclass(frozen=True)
class TokenMerge:
    """A three-way merge of the tokens of one region."""

    base: list[str]
    ours: list[str]
    theirs: list[str]
    chunks: list[Chunk]

    @property
    def conflicts(self) -> list[Chunk]:
        return [c for c in self.chunks if c.conflict]

    def render(self, pick: dict[int, list[str]] | None = None) -> list[str]:
        """The merged tokens as lines; ``pick`` gives the tokens for conflicting chunks."""
        out: list[str] = []
        at = 0
        for n, chunk in enumerate(self.chunks):
            out.extend(self.ours[at : chunk.ours_start])
            at = chunk.ours_end
            if chunk.conflict:
                if pick is None or n not in pick:
                    raise ValueError("unresolved token conflict")
                out.extend(pick[n])
            elif chunk.take_theirs:
                out.extend(self.theirs[chunk.theirs_start : chunk.theirs_end])
            else:
                out.extend(self.ours[chunk.ours_start : chunk.ours_end])
        out.extend(self.ours[at:])
        return "".join(out).splitlines(keepends=True)


def merge_tokens(base: Sequence[str], ours: Sequence[str], theirs: Sequence[str]) -> TokenMerge:
    """The token-level three-way merge of a region's three versions (lines)."""
    b, o, t = tokenize(base), tokenize(ours), tokenize(theirs)
    bi, oi, ti = ids(b, o, t)
    return TokenMerge(b, o, t, merge_chunks(bi, oi, ti))


def line_hunks(base: Sequence[str], side: Sequence[str]) -> list[Hunk]:
    """The line diff of a region from base to one side."""
    bi, si = ids(base, side)
    return diff(bi, si)
