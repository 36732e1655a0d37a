"""The sides edited different words of the region: apply both edits."""

from __future__ import annotations

from bot.merge.hazards import blank_only_change, related_edits
from bot.merge.model import Conflict, Resolution, Strategy
from bot.merge.tokens import merge_tokens

_MAX_TOKENS = 3000
KINDS: tuple[str, ...] = ("data",)
_DATA = (".json", ".yml", ".yaml", ".toml", ".ini", ".cfg", ".txt", ".in", ".lock")


def _kind(path: str) -> str:
    name = path.lower().rsplit("/", 1)[-1]
    if name.endswith((".py", ".js", ".ts", ".tsx", ".mjs", ".cjs", ".jsx")):
        return "code"
    if name.endswith(_DATA) or name.startswith("requirements"):
        return "data"
    return "text"


def resolve(c: Conflict) -> Resolution | None:
    """Merge the region word by word, as a line merge does with lines."""
    if _kind(c.path) not in KINDS or not c.base:
        return None
    if blank_only_change(c.base, c.ours, c.theirs) or related_edits(c.base, c.ours, c.theirs):
        return None
    merge = merge_tokens(c.base, c.ours, c.theirs)
    if max(len(merge.base), len(merge.ours), len(merge.theirs)) > _MAX_TOKENS:
        return None
    if merge.conflicts:
        return None
    return Resolution(
        lines=merge.render(),
        strategy=Strategy.TOKEN_MERGE,
        explanation="The sides changed different words of these lines; both changes kept.",
    )
