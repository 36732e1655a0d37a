"""In a data file, the sides each changed a different one of two neighbouring entries."""

from __future__ import annotations

from bot.merge.hazards import blank_only_change, related_edits
from bot.merge.model import Conflict, Resolution, Strategy
from bot.merge.tokens import line_hunks

_DATA = (".json", ".yml", ".yaml", ".toml", ".ini", ".cfg")
_PIP = (".txt", ".in")


def _is_data(path: str) -> bool:
    """JSON, YAML, TOML, INI, and pip's requirements and constraints files; not any other
    ``.txt`` (prose, ``CMakeLists.txt``), where neighbouring lines belong together."""
    name = path.lower().rsplit("/", 1)[-1]
    return name.endswith(_DATA) or (
        name.endswith(_PIP) and name.startswith(("requirements", "constraints")))


def _ending(line: str) -> str:
    stripped = line.rstrip()
    return stripped[len(stripped.rstrip(",;")) :]


def resolve(c: Conflict) -> Resolution | None:
    """Apply both edits when each side rewrote one line, and not the same line.

    In data files (JSON, YAML, TOML, INI, requirements) a line is an entry; git calls two
    edits of neighbouring entries a conflict only because they touch. Each side must have
    changed exactly one line into one line, keeping its separator, with no sign that the
    two edits are related.
    """
    if not _is_data(c.path) or len(c.base) != 2:
        return None
    ours, theirs = line_hunks(c.base, c.ours), line_hunks(c.base, c.theirs)
    if len(ours) != 1 or len(theirs) != 1:
        return None
    (o0, o1, os0, os1), (t0, t1, ts0, ts1) = ours[0], theirs[0]
    if o1 - o0 != 1 or os1 - os0 != 1 or t1 - t0 != 1 or ts1 - ts0 != 1 or o0 == t0:
        return None
    if blank_only_change(c.base, c.ours, c.theirs) or related_edits(c.base, c.ours, c.theirs):
        return None
    lines = list(c.base)
    lines[o0] = c.ours[os0]
    lines[t0] = c.theirs[ts0]
    if any(_ending(new) != _ending(old) for new, old in zip(lines, c.base, strict=True)):
        return None
    return Resolution(
        lines=lines,
        strategy=Strategy.ADJACENT_ENTRIES,
        explanation="Each side changed a different one of these two neighbouring entries; "
        "both changes kept.",
    )
