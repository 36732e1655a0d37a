"""The conflict strategies, in the order they are tried; each proves its case or declines."""

from __future__ import annotations

from bot.merge.model import StrategyFn
from bot.merge.strategies import (
    adjacent_entries,
    keyed_entries,
    release_sections,
    removed_block,
    same_change,
    sorted_block,
    subsumed,
    versions,
)

# Most specific first: a rule that recognises what the edits mean (versions, a sorted
# list) is preferred over the structural ones.
STRATEGIES: tuple[StrategyFn, ...] = (
    same_change.resolve,
    versions.resolve,
    sorted_block.resolve,
    subsumed.resolve,
    removed_block.resolve,
    adjacent_entries.resolve,
    keyed_entries.resolve,
    release_sections.resolve,
)
