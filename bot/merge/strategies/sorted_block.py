"""Both sides edited a sorted list (imports, dependencies, authors): keep it sorted."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from itertools import pairwise

from bot.merge.model import Conflict, Resolution, Strategy

_MIN_BLOCK = 5
_MAX_BLOCK = 400
# The first name on a line ("name": ..., name==1.0, import name): two entries for one name
# mean both sides changed the same entry, which sorting cannot settle.
_ENTRY = re.compile(r"[\W_]*([\w.\-/@]+)")

_IMPORT = re.compile(r"\s*(?:import\s+([\w.]+)(.*)|from\s+([\w.]+)\s+import\s+(.*))")


def _import_key(line: str) -> str:
    """isort's order for Python imports: plain imports, then from-imports, by module, then name.

    Lines that are not imports sort nowhere (the block then fails to be sorted).
    """
    match = _IMPORT.fullmatch(line.rstrip("\r\n"))
    if match is None:
        return "\uffff" + line
    if match.group(1) is not None:
        return "0 " + match.group(1).casefold() + " " + match.group(2).strip().casefold()
    return "1 " + match.group(3).casefold() + " " + match.group(4).strip().casefold()


def _entry(line: str) -> str:
    match = _ENTRY.match(line)
    return match.group(1) if match else line


def _imported(line: str) -> str:
    """The names a Python import line binds (``from a import b, c`` -> ``b, c``)."""
    match = _IMPORT.fullmatch(line.rstrip("\r\n"))
    if match is None:
        return line
    return (match.group(1) or "") + (match.group(2) or "") if match.group(1) else match.group(4)


# (name, sort key, the entry's identity: two lines with one identity are one entry changed).
_KEYS: tuple[tuple[str, Callable[[str], str], Callable[[str], str]], ...] = (
    ("exact", lambda line: line.strip(), _entry),
    ("case-insensitive", lambda line: line.strip().casefold(), _entry),
    ("Python import", _import_key, _imported),
)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _run(lines: Sequence[str], start: int, step: int, indent: int) -> list[str]:
    """Neighbouring non-blank lines with the same indentation, going up or down."""
    out: list[str] = []
    at = start
    while 0 <= at < len(lines) and len(out) < _MAX_BLOCK:
        line = lines[at]
        if not line.strip() or _indent(line) != indent:
            break
        out.append(line)
        at += step
    return out[::-1] if step < 0 else out


def _is_sorted(keys: list[str]) -> bool:
    return all(a < b for a, b in pairwise(keys))


def _ending(line: str) -> str:
    """The punctuation a list entry ends with (``,`` ``;`` or nothing)."""
    stripped = line.rstrip()
    return stripped[len(stripped.rstrip(",;")) :]


def _same_punctuation(block: list[str], ours_block: list[str]) -> bool:
    """Entries keep the separator convention: all alike but the last, which ends as in ours."""
    if _ending(block[-1]) != _ending(ours_block[-1]):
        return False
    return len({_ending(line) for line in block[:-1]}) <= 1


def _entry_changed_twice(c: Conflict, identity: Callable[[str], str]) -> bool:
    """Whether one side rewrote an entry that the other side also removed or rewrote."""
    base = set(c.base)
    touched: list[set[str]] = []
    rewritten: list[set[str]] = []
    for side in (c.ours, c.theirs):
        removed = {identity(line) for line in base - set(side)}
        added = {identity(line) for line in set(side) - base}
        touched.append(removed | added)
        rewritten.append(removed & added)
    return bool(rewritten[0] & touched[1] or rewritten[1] & touched[0])


def resolve(c: Conflict) -> Resolution | None:
    """Merge the entries both sides added or removed into a list both kept sorted.

    Applies when the region and its neighbouring lines (same indentation, no blank line)
    form a list of at least five distinct entries that is strictly sorted in ours and in
    theirs, under one ordering. The result keeps every entry that either side added and
    drops every entry that either side removed, in that order. It declines when the
    ordering is ambiguous, when an entry name would appear twice (both sides changed the
    same entry), or when lines are not unique.
    """
    region = [*c.base, *c.ours, *c.theirs]
    if any(not line.strip() for line in region):
        return None
    indents = {_indent(line) for line in region}
    if not indents:
        return None
    if len(indents) != 1:
        return None
    indent = indents.pop()
    ch = c.chunk
    ours_block = [
        *_run(c.ours_file, ch.ours_start - 1, -1, indent),
        *c.ours,
        *_run(c.ours_file, ch.ours_end, 1, indent),
    ]
    theirs_block = [
        *_run(c.theirs_file, ch.theirs_start - 1, -1, indent),
        *c.theirs,
        *_run(c.theirs_file, ch.theirs_end, 1, indent),
    ]
    if min(len(ours_block), len(theirs_block)) < _MIN_BLOCK:
        return None
    for lines in (c.base, c.ours, c.theirs):
        if len(set(lines)) != len(lines):
            return None
    base = set(c.base)
    if (
        (base - set(c.ours)) & (base - set(c.theirs))
        and set(c.ours) - base
        and set(c.theirs) - base
    ):
        return None  # both sides replaced the same entry
    removed = (base - set(c.ours)) | (base - set(c.theirs))
    added = [line for line in (*c.ours, *c.theirs) if line not in base]
    entries = [line for line in dict.fromkeys([*c.base, *added]) if line not in removed]
    before = _run(c.ours_file, ch.ours_start - 1, -1, indent)
    after = _run(c.ours_file, ch.ours_end, 1, indent)
    answer: list[str] | None = None
    order = ""
    identity: Callable[[str], str] = _entry
    for name, key, entry in _KEYS:
        if name == "Python import" and c.language != "python":
            continue
        if not (
            _is_sorted([key(x) for x in ours_block]) and _is_sorted([key(x) for x in theirs_block])
        ):
            continue
        merged = sorted(entries, key=key)
        if not _is_sorted([key(x) for x in [*before, *merged, *after]]):
            continue
        if answer is not None and answer != merged:
            return None
        if answer is None:
            answer, order, identity = merged, name, entry
    if answer is None or not after:
        # With nothing after the region, appending explains the order as well as sorting
        # does (changelog links, numbered entries), so the order is not proven.
        return None
    if not _same_punctuation([*before, *answer, *after], ours_block):
        return None
    names = [identity(line) for line in answer]
    if len(set(names)) != len(names) or _entry_changed_twice(c, identity):
        return None
    if any(name[:1].isdigit() for name in names):
        # Numbered entries (issue links, releases) are in order because they were
        # appended over time; that order proves no sorting rule for where new ones go.
        return None
    return Resolution(
        lines=answer,
        strategy=Strategy.SORTED_BLOCK,
        explanation=f"Both sides edited a list kept in {order} sorted order; merged their "
        "entries in that order.",
    )
