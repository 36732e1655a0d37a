"""What an LLM agent must answer, as schemas: a resolver's proposals for the conflict regions the
deterministic resolver left. (The triage adjustment is `bot.schemas.triage.LlmAdjustment`.)"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from bot.schemas.base import Schema
from bot.schemas.common import Text


class RegionProposal(Schema):
    """The lines that replace one conflict region, markers and all."""

    region: Annotated[int, Field(ge=0)]  # index among the file's unresolved regions, in order
    resolution: Annotated[str, StringConstraints(max_length=200_000)]
    explanation: Text
    confidence: Annotated[int, Field(ge=0, le=100)]


class FileProposal(Schema):
    """An LLM's answer for one file: a proposal per unresolved region, or none it is sure of."""

    regions: list[RegionProposal]

    @model_validator(mode="after")
    def _unique(self) -> FileProposal:
        indexes = [r.region for r in self.regions]
        if len(set(indexes)) != len(indexes):
            raise ValueError("a region is proposed twice")
        return self
