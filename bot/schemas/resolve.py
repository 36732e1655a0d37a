"""`resolve.json`: how each conflicted file was resolved (or not), and the hash of `patch.diff`."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from bot.schemas.base import Schema
from bot.schemas.common import Count, GitSha, RepoPath, Sha256Hex, Text
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


class FileResolution(Schema):
    path: RepoPath
    status: FileStatus
    resolver: ResolverKind
    strategies: list[StrategyName] = Field(default_factory=list)
    confidence: Annotated[int, Field(ge=0, le=100)]
    explanation: Text
    regions: Count
    regions_resolved: Count

    @model_validator(mode="after")
    def _consistent(self) -> FileResolution:
        if self.regions_resolved > self.regions:
            raise ValueError("more regions resolved than there are")
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
