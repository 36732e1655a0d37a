"""Deterministic three-way merge that settles only the conflicts it can show to be safe."""

from __future__ import annotations

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
