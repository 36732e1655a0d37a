"""Deterministic three-way merge that settles only the conflicts it can show to be safe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.merge.engine import DEFAULT_LABELS, DEFAULT_MAX_BYTES, merge_bytes, merge_texts
    from bot.merge.model import MergeResult, Region, Strategy

__all__ = [
    "DEFAULT_LABELS",
    "DEFAULT_MAX_BYTES",
    "MergeResult",
    "Region",
    "Strategy",
    "merge_bytes",
    "merge_texts",
]

# The command line imports bot.cli.merge_commands (and so this package) on every `gwi` start, and git
# starts `gwi merge-driver` once per conflicted file: the engine loads on first use only.
_HOMES = {
    "DEFAULT_LABELS": "bot.merge.engine",
    "DEFAULT_MAX_BYTES": "bot.merge.engine",
    "merge_bytes": "bot.merge.engine",
    "merge_texts": "bot.merge.engine",
    "MergeResult": "bot.merge.model",
    "Region": "bot.merge.model",
    "Strategy": "bot.merge.model",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'bot.merge' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(home), name)
