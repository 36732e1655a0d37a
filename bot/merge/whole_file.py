"""Checks on a merged file as a whole: resolutions that break it are turned back.

A region's resolution can be right on its own and still break the file: a syntax error
where two resolutions meet, an import one resolution drops that another side's code still
reads. The engine runs these checks once every region has an answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.merge.checks import dangling_imports, language, parses, python_tree
from bot.merge.model import Conflict, Resolution


def check_whole_file(
    path: str,
    ours: str,
    theirs: str,
    pieces: Sequence[list[str] | int],
    conflicts: Sequence[Conflict],
    answers: list[Resolution | None],
    undone: dict[int, str],
) -> None:
    """Turn resolutions back into conflicts when they break a file both sides could parse.

    The merged file (unsettled regions as ours has them) must parse whenever ours and
    theirs both do; if it does not, each resolution is tried alone and the ones that break
    it are undone. For Python, a resolution must also not drop an import whose name the
    merged code still reads. ``undone`` gets, for each resolution turned back, the reason.
    """

    def undo(i: int, why: str) -> None:
        answer = answers[i]
        if answer is not None:
            undone[i] = f"{answer.strategy.value} would settle it, but {why}; left for a person."
            answers[i] = None

    python = language(path) == "python"

    def text_with(chosen: Sequence[Resolution | None]) -> str:
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, int):
                answer = chosen[piece]
                out.extend(answer.lines if answer is not None else conflicts[piece].ours)
            else:
                out.extend(piece)
        return "".join(out)

    merged = text_with(answers)
    if merged == ours or merged == theirs:
        # The merge is one side's file: it parses when that side does, and it holds
        # nothing of the other side's that could need an import it dropped.
        return
    merged_tree = python_tree(merged) if python else None
    if (merged_tree is None) if python else not parses(path, merged):
        # Only now does it matter whether the sides themselves parse (old syntax may not).
        if not parses(path, ours) or not parses(path, theirs):
            return
        for i, answer in enumerate(answers):
            if answer is None:
                continue
            alone: list[Resolution | None] = [None] * len(answers)
            alone[i] = answer
            if not parses(path, text_with(alone)):
                undo(i, "the file would not parse with that")
        merged = text_with(answers)
        if not parses(path, merged):
            for i in range(len(answers)):
                undo(i, "the file would not parse with all of them together")
            return
        merged_tree = python_tree(merged) if python else None
    if merged_tree is None or not any(
        answer is not None and "import" in "".join([*c.ours, *c.theirs])
        for c, answer in zip(conflicts, answers, strict=True)
    ):
        return  # only a region that touches imports can drop one
    dangling = dangling_imports(ours, theirs, merged_tree, merged)
    if dangling:
        why = f"that drops the import of {', '.join(sorted(dangling))}, still in use"
        for i in _blame(dangling, conflicts, answers):
            undo(i, why)


def _blame(
    names: set[str], conflicts: Sequence[Conflict], answers: list[Resolution | None]
) -> list[int]:
    """The resolutions that dropped ``names`` (all of them if none clearly did)."""
    pattern = re.compile(r"\b(?:" + "|".join(map(re.escape, sorted(names))) + r")\b")
    settled = [i for i, answer in enumerate(answers) if answer is not None]
    blamed = []
    for i in settled:
        answer = answers[i]
        assert answer is not None
        before = pattern.findall("".join([*conflicts[i].ours, *conflicts[i].theirs]))
        after = pattern.findall("".join(answer.lines))
        if set(before) - set(after):
            blamed.append(i)
    return blamed or settled
