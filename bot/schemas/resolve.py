"""`resolve.json`: how each conflicted file was resolved (or not), and the hash of `patch.diff`."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from bot.schemas.base import Schema
from bot.schemas.common import Count, GitSha, Name, RepoPath, Sha256Hex, Text
from bot.schemas.run import RunId

StrategyName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]


class FileStatus(enum.StrEnum):
    MERGED_CLEANLY = "merged_cleanly"  # git's merge had no conflict in this file
    RESOLVED = "resolved"  # every conflict region was resolved
    UNRESOLVED = "unresolved"  # at least one region (or the whole file) is left to a human


class ResolverKind(enum.StrEnum):
    GIT = "git"
    DETERMINISTIC = "deterministic"
    LLM = "llm"
    NONE = "none"


class RegionCheck(enum.StrEnum):
    """A check a region's resolution passed before gwi kept it."""

    NO_CONFLICT_MARKERS = "no_conflict_markers"  # no conflict marker in what settles it
    NO_LOST_LINES = "no_lost_lines"  # no line either side added is dropped
    LINE_ENDS = "line_ends"  # every line but the file's last ends with a line break
    PARSES = "parses"  # the merged file parses as its language


#: Each text of a region is recorded up to this many characters (``cut`` says when one was
#: longer); the whole merged file is in ``patch.diff``.
REGION_TEXT_LIMIT = 20_000
RegionText = Annotated[str, StringConstraints(max_length=REGION_TEXT_LIMIT)]


class RegionResolution(Schema):
    """One conflict region as git left it, its three sides, and what gwi made of it.

    ``ours`` is the head's lines (the pull request's branch), ``theirs`` the base branch's,
    ``base`` the merge base's. ``resolution`` is None for a region left to a person.
    """

    index: Count
    base: RegionText
    ours: RegionText
    theirs: RegionText
    resolution: RegionText | None = None
    resolver: ResolverKind
    strategy: StrategyName | None = None
    explanation: Text
    confidence: Annotated[int, Field(ge=0, le=100)] = 0
    checks: list[RegionCheck] = Field(default_factory=list)
    model: Name | None = None  # the LLM that proposed the resolution
    cut: bool = False  # a text was longer than REGION_TEXT_LIMIT and was cut there
    #: A span git merged without a conflict that gwi shows as one (an older release line's
    #: version change beside a region settled for the newer line); False for git's regions.
    surfaced: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> RegionResolution:
        left = self.resolver is ResolverKind.NONE
        if left != (self.resolution is None):
            raise ValueError("a region has a resolution exactly when a resolver settled it")
        if self.resolver is ResolverKind.GIT:
            raise ValueError("git settles no conflict region")
        if left and (self.strategy is not None or self.checks):
            raise ValueError("a region left to a person has no strategy and passed no check")
        if (self.resolver is ResolverKind.LLM) != (self.model is not None):
            raise ValueError("an LLM-proposed region, and only one, names the model")
        return self


class FileResolution(Schema):
    path: RepoPath
    status: FileStatus
    resolver: ResolverKind
    strategies: list[StrategyName] = Field(default_factory=list)
    confidence: Annotated[int, Field(ge=0, le=100)]
    explanation: Text
    regions: Count
    regions_resolved: Count
    #: Each region's sides and resolution; None in bundles written before it was recorded.
    region_details: list[RegionResolution] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FileResolution:
        if self.regions_resolved > self.regions:
            raise ValueError("more regions resolved than there are")
        if self.region_details is not None and (
            [r.index for r in self.region_details] != list(range(self.regions))
            or sum(r.resolver is not ResolverKind.NONE for r in self.region_details)
            != self.regions_resolved
        ):
            raise ValueError("region_details must list every region in order, and as many"
                             " settled as regions_resolved says")
        if self.status is FileStatus.MERGED_CLEANLY and (
            self.regions or self.resolver is not ResolverKind.GIT
        ):
            raise ValueError("a cleanly merged file has no regions and was merged by git")
        if self.status is FileStatus.RESOLVED and (
            self.regions_resolved != self.regions
            or self.resolver not in (ResolverKind.DETERMINISTIC, ResolverKind.LLM)
        ):
            raise ValueError("a resolved file has every region resolved by a resolver")
        if self.status is FileStatus.UNRESOLVED and self.regions and (
            self.regions_resolved == self.regions
        ):
            raise ValueError("an unresolved file has a region left")
        return self


class ResolveResult(Schema):
    schema_version: Literal[1] = 1
    run_id: RunId
    base_sha: GitSha
    head_sha: GitSha
    merge_base_sha: GitSha | None = None
    files: list[FileResolution]
    files_total: Count
    files_resolved: Count
    files_unresolved: Count
    clean: bool
    patch_sha256: Sha256Hex
    patch_bytes: Count

    @model_validator(mode="after")
    def _counts_match_files(self) -> ResolveResult:
        paths = [f.path for f in self.files]
        if paths != sorted(set(paths)):
            raise ValueError("files must be sorted by path and unique")
        if self.files_total != len(self.files):
            raise ValueError("files_total is not the number of files")
        if self.files_resolved != sum(f.status is FileStatus.RESOLVED for f in self.files):
            raise ValueError("files_resolved does not count the resolved files")
        if self.files_unresolved != sum(f.status is FileStatus.UNRESOLVED for f in self.files):
            raise ValueError("files_unresolved does not count the unresolved files")
        if self.clean != (self.files_unresolved == 0):
            raise ValueError("clean means no file is unresolved")
        return self
