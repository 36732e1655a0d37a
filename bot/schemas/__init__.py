"""The pydantic models of every artifact in a run bundle, by artifact name."""

from __future__ import annotations

from bot.schemas.approval import ApprovalRecord
from bot.schemas.base import Schema
from bot.schemas.plan import PlanResult
from bot.schemas.resolve import ResolveResult
from bot.schemas.review import ReviewResult
from bot.schemas.run import RunContext
from bot.schemas.triage import TriageResult

#: The schema every JSON artifact is validated against, on write and on read.
ARTIFACT_SCHEMAS: dict[str, type[Schema]] = {
    "run.json": RunContext,
    "triage.json": TriageResult,
    "plan.json": PlanResult,
    "resolve.json": ResolveResult,
    "review.json": ReviewResult,
    "approval.json": ApprovalRecord,
}

__all__ = [
    "ARTIFACT_SCHEMAS",
    "ApprovalRecord",
    "PlanResult",
    "ResolveResult",
    "ReviewResult",
    "RunContext",
    "Schema",
    "TriageResult",
]
