"""`review.json`: what the reviewer checked on the patch, what it found, and whether it is
approvable."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field, model_validator

from bot.schemas.base import Schema
from bot.schemas.common import Count, RepoPath, Sha256Hex, Text
from bot.schemas.run import RunId


class Check(enum.StrEnum):
    CONFLICT_MARKERS = "conflict_markers"  # no <<<<<<< ======= >>>>>>> left
    SYNTAX = "syntax"  # each changed file still parses, where its language can be checked
    LOST_LINES = "lost_lines"  # no line either side added was dropped
    SECRETS = "secrets"  # no tokens, private keys or .env content introduced
    SIZE = "size"  # the patch and its files stay within limits
    UNRESOLVED = "unresolved"  # the resolver left regions (or whole files) to a human


class Severity(enum.StrEnum):
    INFO = "info"
    WARNING = "warning"
    BLOCKER = "blocker"  # the patch must not be approved


class Finding(Schema):
    check: Check
    severity: Severity
    message: Text
    path: RepoPath | None = None
    line: Annotated[int, Field(ge=1)] | None = None


class Verdict(enum.StrEnum):
    APPROVABLE = "approvable"
    BLOCKED = "blocked"


class ReviewResult(Schema):
    schema_version: Literal[1] = 1
    run_id: RunId
    patch_sha256: Sha256Hex
    checks: list[Check]
    findings: list[Finding]
    blockers: Count
    warnings: Count
    verdict: Verdict

    @model_validator(mode="after")
    def _consistent(self) -> ReviewResult:
        if len(set(self.checks)) != len(self.checks):
            raise ValueError("checks repeat")
        for finding in self.findings:
            if finding.check not in self.checks:
                raise ValueError(f"a finding of {finding.check.value}, which was not run")
        if self.blockers != sum(f.severity is Severity.BLOCKER for f in self.findings):
            raise ValueError("blockers does not count the blocker findings")
        if self.warnings != sum(f.severity is Severity.WARNING for f in self.findings):
            raise ValueError("warnings does not count the warning findings")
        if (self.verdict is Verdict.BLOCKED) != (self.blockers > 0):
            raise ValueError("the verdict is blocked exactly when there is a blocker")
        return self
