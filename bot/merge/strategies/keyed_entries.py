"""In a data file, both sides edited a list of key-value entries: merge them entry by entry."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

from bot.merge.diff3 import merge_chunks
from bot.merge.model import Conflict, Resolution, Strategy
from bot.merge.strategies.versions import _is_version, _merge_line, _shape, _split, version_key

# One entry per line, by file kind. ``value`` runs to the end of the line without the entry
# separator; a JSON value that opens an object or array on its own line is no entry.
_JSON = re.compile(
    r'(?P<indent>[ \t]*)"(?P<key>(?:[^"\\]|\\.)+)"[ \t]*:[ \t]*'
    r"(?P<value>(?![\[{][ \t]*$)\S.*?)(?P<sep>,?)[ \t]*"
)
_REQUIREMENT = re.compile(
    r"(?P<indent>)(?P<key>[A-Za-z0-9][\w.\-]*(?:\[[\w.,\- ]*\])?)[ \t]*"
    r"(?P<value>(?:===|==|>=|<=|~=|!=|>|<)[ \t]*\S.*?)(?P<sep>)[ \t]*"
)
_ASSIGN = re.compile(
    r"(?P<indent>[ \t]*)(?P<key>[\w.\-]+)[ \t]*=[ \t]*(?P<value>\S.*?)(?P<sep>)[ \t]*"
)
_YAML = re.compile(
    r"(?P<indent>[ \t]*)(?P<key>[\w.\-]+):[ \t]+(?P<value>[^\s#&*!|>].*?)(?P<sep>)[ \t]*"
)
_MAX_LINES = 400


def _pattern(path: str) -> re.Pattern[str] | None:
    """The entry syntax of a data file, by its name; None for code, prose and the rest."""
    name = path.lower().rsplit("/", 1)[-1]
    if name.endswith(".json"):
        return _JSON
    if name.endswith((".toml", ".ini", ".cfg")):
        return _ASSIGN
    if name.endswith((".yml", ".yaml")):
        return _YAML
    if name.endswith((".txt", ".in")) and name.startswith(("requirements", "constraints")):
        return _REQUIREMENT
    return None


@dataclass(frozen=True, slots=True)
class _Entry:
    indent: str
    key: str
    value: str
    sep: str
    line: str


def _entries(lines: Sequence[str], pattern: re.Pattern[str]) -> list[_Entry] | None:
    """Every line as an entry, or None when some line is not one."""
    out: list[_Entry] = []
    for line in lines:
        match = pattern.fullmatch(line.rstrip("\r\n"))
        if match is None:
            return None
        out.append(_Entry(match["indent"], match["key"], match["value"], match["sep"], line))
    return out


def _version_only(path: str, old: str, new: str) -> bool:
    """Whether ``new`` differs from ``old`` only in version numbers (and pinned hashes)."""
    a, b = _split(old), _split(new)
    return a != b and len(a) == len(b) and _shape(a, path) == _shape(b, path)


def _lowers_a_version(path: str, old: str, new: str) -> bool:
    a, b = _split(old), _split(new)
    if len(a) != len(b) or _shape(a, path) != _shape(b, path):
        return False
    return any(
        x != y and _is_version(x) and _is_version(y) and version_key(y) < version_key(x)
        for x, y in zip(a, b, strict=True)
    )


def _settle_key(path: str, base: str | None, ours: str | None, theirs: str | None) -> str | None:
    """The value one key ends with; raises LookupError when the sides' edits compete.

    None means the entry is gone. Where only one side changed the entry its change holds.
    Where both did: a removal beats a change of versions only (a bump of something no
    longer there means nothing), and of two version bumps the higher wins.
    """
    if ours == theirs or theirs == base:
        return ours
    if ours == base:
        return theirs
    if base is not None:
        if ours is None and theirs is not None and _version_only(path, base, theirs):
            return None
        if theirs is None and ours is not None and _version_only(path, base, ours):
            return None
        if ours is not None and theirs is not None:
            merged = _merge_line(base, ours, theirs, path)
            if merged is not None and merged[1] and merged[0] in (ours, theirs):
                return merged[0]
    raise LookupError("both sides changed one entry")


def _order(base: list[str], ours: list[str], theirs: list[str]) -> list[str] | None:
    """The keys in merged order: git's three-way merge of the key sequences, if it is clean."""
    out: list[str] = []
    at = 0
    for chunk in merge_chunks(base, ours, theirs):
        out.extend(ours[at : chunk.ours_start])
        at = chunk.ours_end
        if chunk.conflict:
            return None
        if chunk.take_theirs:
            out.extend(theirs[chunk.theirs_start : chunk.theirs_end])
        else:
            out.extend(ours[chunk.ours_start : chunk.ours_end])
    out.extend(ours[at:])
    return out


def _keys_elsewhere(
    lines: Sequence[str], start: int, end: int, pattern: re.Pattern[str], indent: str
) -> set[str]:
    """Keys of entries with the region's indentation outside lines[start:end]."""
    keys: set[str] = set()
    for i, line in enumerate(lines):
        if start <= i < end or not line.startswith(indent):
            continue
        match = pattern.fullmatch(line.rstrip("\r\n"))
        if match is not None and match["indent"] == indent:
            keys.add(match["key"])
    return keys


def _with_sep(line: str, sep: str, new_sep: str) -> str:
    """The line with its entry separator replaced."""
    body = line.rstrip("\r\n")
    end = line[len(body) :]
    stripped = body.rstrip()
    if sep:
        stripped = stripped[: -len(sep)]
    return stripped + new_sep + end


def resolve(c: Conflict) -> Resolution | None:
    """Merge entry by entry when every line of the region is a ``key: value`` entry.

    In a data file (JSON, TOML, INI, YAML, requirements) each line of such a list is one
    entry, named by its key. Where only one side touched an entry, its edit holds; where
    both did, a removal beats a version bump and the higher of two bumps wins, else the
    region stays a conflict. Entries keep the order both sides agree on. It declines when
    neither side adds or removes an entry (each branch re-set values: two sets of pins,
    which people take whole), when a side moves entries (reordering is a choice), adds a
    key that the file has elsewhere (a move between lists), lowers a version, or when both
    add different entries at one place (their order would be a guess).
    """
    pattern = _pattern(c.path)
    if pattern is None or not c.base or max(len(c.base), len(c.ours), len(c.theirs)) > _MAX_LINES:
        return None
    sides = [_entries(lines, pattern) for lines in (c.base, c.ours, c.theirs)]
    base, ours, theirs = sides[0], sides[1], sides[2]
    if base is None or ours is None or theirs is None:
        return None
    indents = {e.indent for side in (base, ours, theirs) for e in side}
    if len(indents) != 1:
        return None
    indent = indents.pop()
    keys = [[e.key for e in s] for s in (base, ours, theirs)]
    if any(len(set(k)) != len(k) for k in keys):
        return None
    values = [{e.key: e.value for e in s} for s in (base, ours, theirs)]
    if set(keys[0]) == set(keys[1]) == set(keys[2]):
        return None  # each side only re-set values: two sets of pins, chosen as wholes
    for side in (1, 2):
        kept = [k for k in keys[side] if k in values[0]]
        if kept != [k for k in keys[0] if k in values[side]]:
            return None  # the side moved entries
    ch = c.chunk
    for side, lines, start, end in (
        (1, c.ours_file, ch.ours_start, ch.ours_end),
        (2, c.theirs_file, ch.theirs_start, ch.theirs_end),
    ):
        added = set(keys[side]) - set(keys[0])
        for k in keys[side]:
            if k in values[0] and _lowers_a_version(c.path, values[0][k], values[side][k]):
                return None
        if added and added & (
            _keys_elsewhere(lines, start, end, pattern, indent)
            | _keys_elsewhere(c.base_file, ch.base_start, ch.base_end, pattern, indent)
        ):
            return None  # the entry moved here from elsewhere in the file
    order = _order(*keys)
    if order is None:
        return None
    settled: dict[str, str | None] = {}
    try:
        for k in dict.fromkeys([*keys[0], *keys[1], *keys[2]]):
            settled[k] = _settle_key(c.path, *(v.get(k) for v in values))
    except LookupError:
        return None
    kept = [k for k in order if settled[k] is not None]
    if sorted(kept) != sorted(k for k, v in settled.items() if v is not None):
        return None
    return _render(c, kept, settled, (base, ours, theirs))


def _render(
    c: Conflict,
    kept: list[str],
    settled: dict[str, str | None],
    sides: tuple[list[_Entry], list[_Entry], list[_Entry]],
) -> Resolution | None:
    """The merged entries as lines, each written as the side it came from wrote it."""
    source: dict[tuple[str, str], _Entry] = {}
    for side in (sides[0], sides[2], sides[1]):  # ours' spelling wins, then theirs'
        for e in side:
            source[(e.key, e.value)] = e
    lines: list[str] = []
    separated = _pattern(c.path) is _JSON
    last_sep = _closing_sep(c) if separated else ""
    if last_sep is None:
        return None
    for i, k in enumerate(kept):
        e = source[(k, settled[k] or "")]
        sep = last_sep if i == len(kept) - 1 else ("," if separated else "")
        lines.append(_with_sep(e.line, e.sep, sep))
    start = c.chunk.ours_start
    if lines and separated and start and not _ends_entry(c.ours_file[start - 1]):
        return None
    return Resolution(
        lines=lines,
        strategy=Strategy.KEYED_ENTRIES,
        explanation="The sides changed different entries of this list (or one removed an "
        "entry the other only bumped); merged entry by entry.",
    )


def _closing_sep(c: Conflict) -> str | None:
    """The separator the region's last JSON entry needs: none before a closing bracket."""
    for line in islice(c.ours_file, c.chunk.ours_end, None):
        stripped = line.strip()
        if not stripped:
            continue
        return "" if stripped[0] in "}]" else ","
    return None


def _ends_entry(line: str) -> bool:
    """Whether the JSON line before the region lets another entry follow it."""
    stripped = line.strip()
    return not stripped or stripped.endswith((",", "{", "["))
