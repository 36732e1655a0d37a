"""Splitting text into lines that keep their endings, line-ending styles, and git's diff3
conflict markers."""

from __future__ import annotations

import re
from collections.abc import Sequence

MARKER_SIZE = 7
# What git writes and what people and tools look for: the marker at the start of a line,
# followed by a space and a label, or by nothing but the line end. A lone "=======" is
# left out: it is an ordinary heading underline in reStructuredText and Markdown.
_OTHER_BREAKS = ("\r", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029")
_MARKER_LINE = re.compile(r"^(?:<{7}|\|{7}|>{7})(?: |\r?$)", re.MULTILINE)


def split_lines(text: str) -> list[str]:
    """Lines with their ``\\n`` kept; the last one lacks it when the text does not end in one."""
    if not any(ch in text for ch in _OTHER_BREAKS):
        # str.splitlines also splits at \r, \f, \x1c.. and \u2028; without those it is ours.
        return text.splitlines(keepends=True)
    parts = text.split("\n")
    last = parts.pop()
    lines = [part + "\n" for part in parts]
    if last:
        lines.append(last)
    return lines


def has_marker_line(text: str) -> bool:
    """Whether any line starts with a ``<<<<<<<``, ``|||||||`` or ``>>>>>>>`` conflict marker."""
    return _MARKER_LINE.search(text) is not None


def _crlf(lines: Sequence[str], i: int) -> int:
    """1 when line ``i`` ends in CRLF, 0 when in LF, -1 when it cannot tell."""
    if not lines:
        return -1
    line = lines[i]
    if i < len(lines) - 1 or line.endswith("\n"):
        return 1 if line.endswith("\r\n") else 0
    if i == 0:
        return -1
    return 1 if lines[i - 1].endswith("\r\n") else 0


def marker_eol(
    base: Sequence[str], ours: Sequence[str], theirs: Sequence[str], ours_at: int, theirs_at: int
) -> str:
    """The line end for the markers of a region, decided as git decides it.

    CRLF only when the lines before the region on both sides and the base's first line
    use it; LF whenever one of them uses LF or nothing can be told.
    """
    verdict = _crlf(ours, max(ours_at - 1, 0))
    if verdict:
        verdict = _crlf(theirs, max(theirs_at - 1, 0))
    if verdict:
        verdict = _crlf(base, 0)
    return "\r\n" if verdict == 1 else "\n"


def conflict_block(
    ours: Sequence[str],
    base: Sequence[str],
    theirs: Sequence[str],
    labels: tuple[str, str, str],
    eol: str,
) -> list[str]:
    """A diff3-style conflict: ours, the base section, theirs, between git's markers."""

    def marker(char: str, label: str) -> str:
        return char * MARKER_SIZE + (f" {label}" if label else "") + eol

    def section(lines: Sequence[str]) -> list[str]:
        out = list(lines)
        if out and not out[-1].endswith("\n"):
            out[-1] += eol
        return out

    return [
        marker("<", labels[0]),
        *section(ours),
        marker("|", labels[1]),
        *section(base),
        "=" * MARKER_SIZE + eol,
        *section(theirs),
        marker(">", labels[2]),
    ]


def eol_style(data: bytes) -> str | None:
    """ "crlf" or "lf" when every line ends that way, None when mixed or no line ends."""
    lf = data.count(b"\n")
    if not lf:
        return None
    crlf = data.count(b"\r\n")
    if crlf == lf:
        return "crlf"
    return "lf" if crlf == 0 else None


def conversion_note(styles: Sequence[str | None]) -> str:
    """Why a file one side converted to other line endings (base, ours, theirs styles) is
    left as git's conflict: which side's lines and which convention is a person's call."""
    side = 1 if styles[1] != styles[0] else 2
    old, new = (str(styles[i]).upper() for i in (0, side))
    return (f"{('Ours', 'Theirs')[side - 1]} converted every line ending ({old} to {new}), so "
            "every line conflicts; which lines and which line endings to keep is a person's call.")
