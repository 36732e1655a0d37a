"""Both sides added release sections to a changelog: order them by version, as the file does."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from itertools import pairwise

from bot.merge.model import Conflict, Resolution, Strategy
from bot.merge.strategies.versions import Key, version_key

_UNDERLINE = re.compile(r"([=\-~^*+#`])\1{2,}[ \t]*")
_ATX = re.compile(r"(#{1,6})[ \t]+\S.*")
# One release number in a heading: 1.2, 1.2.3, v2.0.0-beta.1, 3.0.1.dev0.
_RELEASE = re.compile(
    r"(?<![\w.])v?(\d+(?:\.\d+)+(?:[-.]?(?:alpha|beta|rc|a|b|c|dev|pre|post)\.?\d*)*)(?![\w.])",
    re.IGNORECASE,
)
_MIN_RELEASES = 3


def _heading(lines: Sequence[str], i: int) -> str | None:
    """The kind of heading that starts at line i (``#`` level or underline character)."""
    line = lines[i].rstrip("\r\n")
    if not line.strip():
        return None
    atx = _ATX.fullmatch(line)
    if atx is not None:
        return atx.group(1)
    if i + 1 < len(lines) and not _UNDERLINE.fullmatch(line):
        underline = _UNDERLINE.fullmatch(lines[i + 1].rstrip("\r\n"))
        if underline is not None:
            return "_" + underline.group(1)
    return None


def _release(line: str) -> Key | None:
    """The version a heading names, when it names exactly one."""
    found = _RELEASE.findall(line)
    return version_key(found[0]) if len(found) == 1 else None


def _sections(lines: Sequence[str], kind: str) -> list[tuple[Key, list[str]]] | None:
    """The lines as whole sections under headings of ``kind`` naming a release, or None."""
    if _heading(lines, 0) != kind:
        return None
    starts = [i for i in range(len(lines)) if _heading(lines, i) is not None]
    if not starts or starts[0] != 0 or any(_heading(lines, i) != kind for i in starts):
        return None
    out: list[tuple[Key, list[str]]] = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines)
        key = _release(lines[start])
        if key is None:
            return None
        out.append((key, list(lines[start:end])))
    return out


def _releases(text: str, kind: str) -> Iterator[Key]:
    """The releases named by headings of ``kind`` in a text, in order, found lazily."""
    if kind.startswith("_"):
        # Find the underlines (rare lines), then take the line above each.
        pattern = rf"\n{re.escape(kind[1])}{{3,}}[ \t]*\r?$"
        matches = re.finditer(pattern, text, re.MULTILINE)
        titles = (text[text.rfind("\n", 0, m.start()) + 1 : m.start()] for m in matches)
    else:
        matches = re.finditer(rf"^{kind}[ \t]+(\S[^\n]*)$", text, re.MULTILINE)
        titles = (m.group(1) for m in matches)
    found = (_release(title) for title in titles if title.strip())
    return (key for key in found if key is not None)


def _trailing_blanks(lines: Sequence[str]) -> int:
    count = 0
    for line in reversed(lines):
        if line.strip():
            break
        count += 1
    return count


def resolve(c: Conflict) -> Resolution | None:
    """Keep both sides' new release sections, newest first, when the changelog is so ordered.

    Applies when both sides inserted, at one place, only whole sections whose headings each
    name one release, right before an existing release heading of the same kind, in a file
    whose release headings already go from the newest down. Each side's sections are kept
    as written, ordered by release like the rest of the file. It declines when two sections
    are for the same release numbers (``3.0.1`` and ``3.0.1.dev``: one release written
    twice), when a new release is not newer than the one that follows, and when the
    sections end with different numbers of blank lines (their spacing would be a guess).
    """
    if c.base or not c.ours or not c.theirs:
        return None
    # The first line after the region (ours' file, read in place: the rest is not copied).
    lines, at = c.ours_file, c.chunk.ours_end
    while at < len(lines) and not lines[at].strip():
        at += 1
    if at == len(lines):
        return None
    kind = _heading(lines, at)
    following = _release(lines[at]) if kind is not None else None
    if kind is None or following is None:
        return None
    ours, theirs = _sections(c.ours, kind), _sections(c.theirs, kind)
    if ours is None or theirs is None:
        return None
    sections = ours + theirs
    releases = [key for key, _ in sections]
    if len({key[0] for key in releases}) != len(releases) or min(releases) <= following:
        return None
    if len({_trailing_blanks(lines) for _, lines in sections}) != 1:
        return None
    # The whole file must show the order (a changelog that mixes two release lines, newest
    # first only at the top, is ordered by hand): stop at the first release out of order.
    shown = 0
    for newer, older in pairwise(_releases("".join(c.ours_file), kind)):
        if newer <= older:
            return None
        shown += 1
    if shown + 1 < _MIN_RELEASES:
        return None
    merged: list[str] = []
    for _, lines in sorted(sections, key=lambda section: section[0], reverse=True):
        merged.extend(lines)
    return Resolution(
        lines=merged,
        strategy=Strategy.RELEASE_SECTIONS,
        explanation="Both sides added release sections to a changelog kept newest first; "
        "kept both, ordered by version.",
    )
