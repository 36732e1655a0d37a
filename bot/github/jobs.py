"""The jobs gwi queues for GitHub work: their kinds, their requests, and how they are enqueued.

Event handlers import this module and nothing else of the GitHub layer's jobs: they decide and
enqueue; the handlers (bot/github/handle_*.py) do the work.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from bot.queue.records import UnitOfWork
from bot.schemas.run import Actor, ActorType
from bot.schemas.state import Outcome, RunState

GITHUB = Actor(type=ActorType.SYSTEM, id="github")


RUN_JOB = "pr.run"


ABORT_JOB = "pr.abort"


RECONCILE_JOB = "pr.reconcile"


APPLY_JOB = "pr.apply"


COMMAND_JOB = "pr.command"


#: A run resumed this many times that is still stuck (each time the process died on it) is
#: failed instead: it is probably what kills the process.
MAX_RESUMES = 2


def pr_key(repository: str, number: int) -> str:
    """Jobs of one pull request run one at a time, in order."""
    return f"pr:{repository.lower()}#{number}"


class Commenter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    login: str
    type: str

    @property
    def is_bot(self) -> bool:
        return self.type != "User" or self.login.endswith("[bot]")


class RunRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    head_sha: str | None = None  # the head the event saw; None: whatever is current
    forced: bool = False  # /gwi run or a re-requested check: run even if one exists
    reopened: bool = False  # the PR was reopened: its head's cancelled run is run again
    base_ref: str | None = None  # a new base branch: run again unless a run has this base
    # Who asked for the run (`/gwi run`): the run's initiator, who counts as an author when
    # the repository forbids self-approval.
    requester: Commenter | None = None
    trigger: str  # what asked: "pull_request.synchronize", "/gwi run by @x", ...


class AbortRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    outcome: Outcome
    reason: str
    actor: str = "github"
    # For a `closed` delivery: end the runs only if GitHub says the PR is closed now (a
    # captured delivery replayed under a new id must not abort the runs of an open PR).
    only_if_closed: bool = False


class ReconcileRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    run_id: str
    state: RunState  # the state the scan saw
    give_up: bool = False


class ApproveRequest(BaseModel):
    """Everything about the approving comment that the record binds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    delivery_id: str
    comment_id: int
    comment_url: str
    comment_body: str
    comment_created_at: datetime
    sender: Commenter
    hash_text: str


class ApplyRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    run_id: str


class CommandRequest(BaseModel):
    """The comment a command came in, as the webhook delivered it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    delivery_id: str
    comment_id: int
    comment_url: str
    comment_body: str
    comment_created_at: datetime
    sender: Commenter
    edited: bool = False  # an edit of an earlier comment: never carried out


def enqueue_run(unit: UnitOfWork, request: RunRequest, *, dedupe: str) -> None:
    """Queue a run; ``dedupe`` makes the same logical request enqueue once."""
    unit.enqueue_job(RUN_JOB, request.model_dump(), key=pr_key(request.repository,
                                                                 request.number),
                     idempotency_key=f"run:{dedupe}")
