"""One side removed a block the other only touched up: the removal stands."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.merge.model import Conflict, Resolution, Strategy
from bot.merge.tokens import distance, tokenize

# A line that imports names, in the languages we meet: Python, JavaScript (import and
# require), Ruby, Rust, Go, Java, C.
_IMPORT = re.compile(
    r"^\s*(?:import\b|from\s+\S+\s+import\b|export\s+.*\bfrom\b|use\s|package\s|"
    r"#\s*include\b|require(?:_relative)?\b|(?:const|let|var)\s+.*\brequire\s*\()"
)
_NAME = re.compile(r"[A-Za-z_$][\w$]*")
# The words of an import line that are not what it imports.
_IMPORT_WORDS = frozenset([
    "import", "from", "as", "export", "default", "require", "require_relative", "use",
    "package", "include", "const", "let", "var", "static",
])

# The other side's edit must be smaller than this share of the removed block's tokens.
_SMALL_EDIT = 4  # changed tokens * 4 < the block's tokens: under a quarter of it
# When more than this share of the block's non-blank lines are still in the removing
# side's file (indentation aside), the block moved rather than went: the edit belongs where
# it moved to.
_MOVED_SHARE = 0.5
# A block of a line or two (blank ones aside) is too small to call an edit in it minor:
# changing `engine = 'jade'` to `'ejs'` is the whole of what the line says.
_MIN_LINES = 3
_MAX_CHARS = 30_000


def resolve(c: Conflict) -> Resolution | None:
    """Keep a side's removal of the whole region when the other side only edited it a little.

    One branch deleted these lines; the other changed under a quarter of them (a fix in
    code the first branch retired, a reworded sentence in a section it dropped) and added
    no lines. The removal is the larger decision, and the edit has nothing left to apply
    to. Declines when the block has fewer than three non-blank lines, when the other side
    grew the block (new lines are new content that may need a home), when its edit is a
    quarter of the block or more, and when most of the block's lines are still in the
    removing side's file, indentation aside (the block moved, and the edit should move with
    it: a person's job). Also when the edit brings in a name the editing side introduced
    elsewhere in the file too (a rename carried through the file: the block is maintained,
    not patched), and when the block was the last user of an import.
    """
    if not c.base or bool(c.ours) == bool(c.theirs):
        return None
    if sum(map(len, c.base)) > _MAX_CHARS:
        return None
    if c.ours:
        kept, kept_name, removed_name, removing_file = c.ours, "ours", "theirs", c.theirs_file
    else:
        kept, kept_name, removed_name, removing_file = c.theirs, "theirs", "ours", c.ours_file
    body = [line.strip() for line in c.base if line.strip()]
    if len(body) < _MIN_LINES:
        return None
    if len(kept) > len(c.base):
        return None  # the other side grew the block: new lines need a home
    block = tokenize(c.base)
    if distance(block, tokenize(kept)) * _SMALL_EDIT >= len(block):
        return None
    elsewhere = {line.strip() for line in removing_file}
    if sum(line in elsewhere for line in body) > _MOVED_SHARE * len(body):
        return None  # moved (perhaps re-indented), not removed
    start, end = (c.chunk.ours_start, c.chunk.ours_end) if c.ours else (
        c.chunk.theirs_start, c.chunk.theirs_end)
    kept_file = c.ours_file if c.ours else c.theirs_file
    rest = [*kept_file[:start], *kept_file[end:]]
    if _orphans_an_import(c.base, removing_file) and _orphans_an_import(c.base, rest):
        return None  # the block was the last user of an import: the merge must drop it too
    new_names = set(_NAME.findall("".join(kept))) - set(_NAME.findall("".join(c.base)))
    if new_names & set(_NAME.findall("".join(rest))) - set(_NAME.findall("".join(c.base_file))):
        return None  # the edit is part of a change made across the file (a rename): kept up
    return Resolution(
        lines=[],
        strategy=Strategy.REMOVED_BLOCK,
        explanation=f"{removed_name.capitalize()} removed these {len(c.base)} lines and "
        f"{kept_name} only edited a few of them; kept the removal.",
    )


def _orphans_an_import(block: Sequence[str], file: Sequence[str]) -> bool:
    """Whether a name the block uses appears in ``file`` only on import lines.

    Removing the block would leave that import unused (`var assert = require('assert')`
    after the last test that asserts went): the maintainers delete the import as well, a
    line outside the region that no region rule may touch.
    """
    used = set(_NAME.findall("".join(block))) - _IMPORT_WORDS
    imported: set[str] = set()
    elsewhere: set[str] = set()
    for line in file:
        names = used.intersection(_NAME.findall(line))
        if names:
            (imported if _IMPORT.match(line) else elsewhere).update(names)
    return bool(imported - elsewhere)
