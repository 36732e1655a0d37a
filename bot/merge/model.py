"""The merge engine's result types: strategies, conflict regions and the merge result."""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.merge.diff3 import Chunk


class Strategy(enum.StrEnum):
    """How a conflict region was settled; the values are stable names used in JSON."""

    SAME_CHANGE = "same_change"
    VERSION_BUMP = "version_bump"
    SUBSUMED = "subsumed"
    SORTED_BLOCK = "sorted_block"
    ADJACENT_ENTRIES = "adjacent_entries"
    KEYED_ENTRIES = "keyed_entries"
    RELEASE_SECTIONS = "release_sections"
    REMOVED_BLOCK = "removed_block"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Region:
    """One conflict region of the plain line-level diff3 merge, and what became of it.

    Spans are 0-based, half-open line ranges of base, ours and theirs.
    """

    index: int
    base_start: int
    base_end: int
    ours_start: int
    ours_end: int
    theirs_start: int
    theirs_end: int
    resolved: bool
    strategy: Strategy
    explanation: str
    lines: int
    confidence: int = 0  # the strategy's leave-one-out precision in percent; 0 if unsettled
    # The region's lines as git left them (line ends normalised as the merge saw them), and
    # the lines that settle it (None while it is a conflict): what a person reviews.
    base_text: str = ""
    ours_text: str = ""
    theirs_text: str = ""
    resolution: str | None = None
    # True for a span git merged without a conflict that is shown as one because a settled
    # region asked for it (``Resolution.surface``); False for git's own conflict regions.
    surfaced: bool = False


@dataclass(frozen=True)
class MergeResult:
    """The merged text and, for each conflict region, how it was settled.

    ``text`` keeps unresolved regions as diff3 conflict markers with the base section.
    ``clean`` is True only when every region was settled and the whole-file checks passed.
    ``refused`` names why the file was left as a conflict without trying, if it was.
    ``generated`` is True when that is because a tool writes the file (a lock file, a
    checksum file, generated code): ``text`` is then git's merge and ``refused`` says
    which tool regenerates it.
    """

    text: str
    clean: bool
    regions: tuple[Region, ...]
    refused: str | None = None
    generated: bool = False

    @property
    def confidence(self) -> int:
        """The least confidence of the file's settled regions (0 when a region is left)."""
        if not self.clean or self.refused:
            return 0
        return min((r.confidence for r in self.regions), default=100)

    @property
    def strategies(self) -> tuple[Strategy, ...]:
        """The strategy of each region, in order."""
        return tuple(region.strategy for region in self.regions)

    def to_bytes(self) -> bytes:
        """The merged text as UTF-8 (bytes that were not UTF-8 come back as they were)."""
        return self.text.encode("utf-8", "surrogateescape")


@dataclass(frozen=True)
class Conflict:
    """What a strategy sees: one conflict region, with the three whole files around it."""

    path: str
    language: str | None
    base: Sequence[str]
    ours: Sequence[str]
    theirs: Sequence[str]
    chunk: Chunk
    base_file: Sequence[str]
    ours_file: Sequence[str]
    theirs_file: Sequence[str]
    # The file's whole merge: every span either side changed, this region among them.
    file_chunks: Sequence[Chunk]

    @property
    def before(self) -> Sequence[str]:
        """The ours-side lines before the region (agreed text, or settled by the merge)."""
        return self.ours_file[: self.chunk.ours_start]

    @property
    def after(self) -> Sequence[str]:
        """The ours-side lines after the region."""
        return self.ours_file[self.chunk.ours_end :]


@dataclass(frozen=True)
class Resolution:
    """A strategy's answer for one region: its lines, and why they are right."""

    lines: list[str]
    strategy: Strategy
    explanation: str
    # Spans of the file (indexes into Conflict.file_chunks) that git merges without a
    # conflict but that this answer says a person must see: the engine turns them into
    # conflicts of their own (the older release line's bumps, beside a region settled for
    # the newer line).
    surface: tuple[int, ...] = ()


StrategyFn = Callable[[Conflict], Resolution | None]
