"""`plan.json` (and its readable twin `plan.md`): what will happen to each file, and why a human
must look."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from bot.schemas.base import Schema
from bot.schemas.common import Count, RepoPath, Text
from bot.schemas.routing import Route
from bot.schemas.run import RunId


class PlannedAction(enum.StrEnum):
    KEEP = "keep"  # git merged the file cleanly: nothing to do
    RESOLVER = "resolver"  # the deterministic resolver settles every region
    LLM = "llm"  # the resolver leaves regions and an LLM is configured to propose the rest
    HUMAN = "human"  # left for a person, with the reasons


class Risk(enum.StrEnum):
    SECURITY_SENSITIVE = "security_sensitive"
    SECRETS_MATERIAL = "secrets_material"
    CI_WORKFLOW = "ci_workflow"
    DEPENDENCY_CHANGE = "dependency_change"
    LOCKFILE = "lockfile"
    MIGRATION = "migration"
    BINARY_FILE = "binary_file"
    GENERATED_FILE = "generated_file"
    LARGE_CONFLICT = "large_conflict"
    UNMERGEABLE = "unmergeable"  # add/delete, rename or mode conflicts, or files refused outright
    UNVERIFIED_LANGUAGE = "unverified_language"  # no parser to check the result with


class FilePlan(Schema):
    path: RepoPath
    action: PlannedAction
    conflicted: bool
    regions: Count
    regions_resolvable: Count
    risks: list[Risk] = Field(default_factory=list)
    human_reasons: list[Text] = Field(default_factory=list)
    # For the resolver's files: how far its resolution is trusted, in percent, the least
    # leave-one-project-out precision of the strategies that settled it (docs/merge.md).
    confidence: Annotated[int, Field(ge=0, le=100)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FilePlan:
        if self.regions_resolvable > self.regions:
            raise ValueError("more resolvable regions than regions")
        if not self.conflicted and (self.regions or self.action is not PlannedAction.KEEP):
            raise ValueError("a file without conflicts has no regions and nothing to do")
        if self.conflicted and self.action is PlannedAction.KEEP:
            raise ValueError("a conflicted file cannot be kept as it is")
        if (self.action is PlannedAction.HUMAN) != bool(self.human_reasons):
            raise ValueError("a file for a human, and only such a file, says why")
        if (
            self.action is PlannedAction.RESOLVER
            and self.regions_resolvable != self.regions
        ):
            raise ValueError("the resolver is planned only when it settles every region")
        if len(set(self.risks)) != len(self.risks):
            raise ValueError("risks repeat")
        return self


class PlanResult(Schema):
    schema_version: Literal[1] = 1
    run_id: RunId
    route: Route
    summary: Text
    files: list[FilePlan]
    needs_human: bool
    human_reasons: list[Text] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> PlanResult:
        paths = [f.path for f in self.files]
        if paths != sorted(set(paths)):
            raise ValueError("files must be sorted by path and unique")
        expected = any(f.action is PlannedAction.HUMAN for f in self.files) or bool(
            self.human_reasons
        )
        if self.needs_human != expected:
            raise ValueError("needs_human must say whether any file or reason needs a human")
        return self
