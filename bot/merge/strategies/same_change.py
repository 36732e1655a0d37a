"""Both sides made the same change and differ only in trailing whitespace or line endings."""

from __future__ import annotations

from bot.merge.model import Conflict, Resolution, Strategy


def _stripped(lines: list[str] | tuple[str, ...]) -> list[str]:
    return [line.rstrip() for line in lines]


def resolve(c: Conflict) -> Resolution | None:
    """Keep the side with less trailing whitespace when the texts are otherwise identical.

    Safe because trailing whitespace and CR/LF carry no meaning in code or prose (editors
    strip them); both sides wrote the very same lines.
    """
    ours, theirs = list(c.ours), list(c.theirs)
    if _stripped(ours) != _stripped(theirs):
        return None
    if c.path.lower().endswith((".md", ".markdown")) and any(
        line.rstrip("\r\n").endswith("  ") for line in ours + theirs
    ):
        return None  # two trailing spaces are a line break in Markdown
    waste_o = sum(len(line) - len(line.rstrip()) for line in ours)
    waste_t = sum(len(line) - len(line.rstrip()) for line in theirs)
    keep, side = (theirs, "theirs") if waste_t < waste_o else (ours, "ours")
    return Resolution(
        lines=keep,
        strategy=Strategy.SAME_CHANGE,
        explanation=f"Both sides made the same change; kept {side}, which differs only "
        "in trailing whitespace.",
    )
