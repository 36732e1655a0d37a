"""`run.json`: the run context, its state and the history of how it got there."""

from __future__ import annotations

import enum
import re
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from bot.schemas.base import Schema
from bot.schemas.common import Count, GitSha, Name, Text, UtcDatetime
from bot.schemas.state import TRANSITIONS, Outcome, RunState, check_outcome

# A sortable UTC stamp (so `ls` lists runs in order) and 100 random bits (so ids cannot be
# guessed). Only [0-9a-zT Z-] ever reaches the file system.
RUN_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[a-z2-7]{20}$")
RunId = Annotated[str, StringConstraints(pattern=RUN_ID_RE.pattern)]
RUN_SCHEMA_VERSION = 1


class ActorType(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    AGENT = "agent"
    TOOL = "tool"


class Actor(Schema):
    type: ActorType
    id: Name


class Provider(enum.StrEnum):
    OFFLINE = "offline"
    ANTHROPIC = "anthropic"
    OPENAI = "openai"


class AgentConfig(Schema):
    """Which provider the agents used; the offline provider has no model."""

    provider: Provider
    model: Name | None = None

    @model_validator(mode="after")
    def _model_fits_provider(self) -> AgentConfig:
        if self.provider is Provider.OFFLINE and self.model is not None:
            raise ValueError("the offline provider has no model")
        if self.provider is not Provider.OFFLINE and self.model is None:
            raise ValueError(f"provider {self.provider.value} needs a model")
        return self


class CapabilityMode(enum.StrEnum):
    """What the run may do to the repository once a person approves its patch."""

    GATED_WRITE = "gated_write"  # commit/push after a verified approval
    READ_ONLY = "read_only"  # never writes (e.g. a fork gwi cannot push to): patch only


class Repository(Schema):
    owner: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,100}$")]
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,100}$")]
    full_name: str

    @model_validator(mode="after")
    def _full_name(self) -> Repository:
        if self.full_name != f"{self.owner}/{self.name}":
            raise ValueError(f"full_name must be {self.owner}/{self.name}")
        return self


class PullRequestRef(Schema):
    number: Annotated[int, Field(ge=1)]
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]


class Revision(Schema):
    """A ref as the user named it, and the commit it pointed at when the run was created."""

    ref: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=r"^[^\x00]+$")]
    sha: GitSha


class RunOptions(Schema):
    """Settings a run was made with (a copy, so the bundle shows what it obeyed)."""

    #: Globs of paths gwi must not resolve: their conflicts are left to a person.
    ignore_paths: list[Annotated[str, StringConstraints(min_length=1, max_length=300)]] = Field(
        default_factory=list, max_length=100
    )
    #: The least repository role that may approve (`.github/gwi.yml`), for the texts that say
    #: who can approve; a local run is approved by its local user.
    approver_role: Literal["read", "triage", "write", "maintain", "admin"] = "write"

    def ignores(self, path: str) -> bool:
        import fnmatch

        return any(fnmatch.fnmatchcase(path, glob) for glob in self.ignore_paths)


class StateEntry(Schema):
    state: RunState
    at: UtcDatetime
    reason: Text = ""


class RunContext(Schema):
    schema_version: Literal[1] = 1
    run_id: RunId
    created_at: UtcDatetime
    updated_at: UtcDatetime
    repository: Repository
    pull_request: PullRequestRef | None = None
    base: Revision
    head: Revision
    initiator: Actor
    installation_id: Annotated[int, Field(ge=1)] | None = None
    #: The repository gwi works in: the user's own for local runs, the bare cache on GitHub.
    workspace: Annotated[str, StringConstraints(max_length=4096, pattern=r"^[^\x00]+$")] | None = None
    agents: AgentConfig
    capabilities: CapabilityMode = CapabilityMode.GATED_WRITE
    options: RunOptions = Field(default_factory=RunOptions)
    state: RunState
    history: Annotated[list[StateEntry], Field(min_length=1)]
    outcome: Outcome | None = None
    error: Text | None = None
    #: How many audit events this file has seen: the seq of the last event before it was sealed.
    audit_seq: Count = 0

    @model_validator(mode="after")
    def _history_is_a_valid_walk(self) -> RunContext:
        if self.history[0].state is not RunState.QUEUED:
            raise ValueError("a run's history starts at queued")
        for before, after in zip(self.history, self.history[1:], strict=False):
            if after.state not in TRANSITIONS[before.state]:
                raise ValueError(
                    f"history moves {before.state.value} -> {after.state.value}, which the state"
                    " machine does not allow"
                )
            if after.at < before.at:
                raise ValueError("history timestamps go backwards")
        if self.state is not self.history[-1].state:
            raise ValueError(
                f"state {self.state.value} is not the last history entry"
                f" ({self.history[-1].state.value})"
            )
        if self.updated_at < self.created_at:
            raise ValueError("updated_at is before created_at")
        check_outcome(self.state, self.outcome)
        if (self.state is RunState.FAILED) != (self.error is not None):
            raise ValueError("a failed run, and only a failed run, carries an error")
        return self
