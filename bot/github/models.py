"""Typed views of the GitHub objects gwi reads: only the fields it uses, the rest tolerated."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

CheckStatus = Literal["queued", "in_progress", "completed"]
CheckConclusion = Literal[
    "action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out"
]
ReactionContent = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]


class ApiModel(BaseModel):
    """Immutable, and ignores fields GitHub adds: its payloads grow over time."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class User(ApiModel):
    login: str
    id: int
    type: str = "User"


class RepoRef(ApiModel):
    """A repository as nested in other objects (a PR's head or base)."""

    id: int
    name: str
    full_name: str
    clone_url: str | None = None
    private: bool = False
    fork: bool = False


class Repository(RepoRef):
    """``GET /repos/{owner}/{repo}``."""

    default_branch: str
    archived: bool = False


class Branch(ApiModel):
    """One side of a pull request. ``repo`` is None when the fork was deleted."""

    ref: str
    sha: str
    label: str | None = None
    repo: RepoRef | None = None

    @property
    def repo_full_name(self) -> str:
        """``owner/name`` of the branch's repository, or "" when it was deleted."""
        return self.repo.full_name if self.repo is not None else ""


class Label(ApiModel):
    name: str


class PullRequest(ApiModel):
    """``GET /repos/{owner}/{repo}/pulls/{number}`` (and the list's simpler items)."""

    number: int
    state: Literal["open", "closed"]
    title: str
    html_url: str
    user: User | None = None
    draft: bool = False
    head: Branch
    base: Branch
    labels: tuple[Label, ...] = ()
    merged: bool = False
    mergeable: bool | None = None
    maintainer_can_modify: bool = False

    @property
    def from_fork(self) -> bool:
        """True when the head branch lives in another repository (or a deleted one)."""
        return self.head.repo is None or self.head.repo.full_name != self.base.repo_full_name

    @property
    def base_full_name(self) -> str:
        return self.base.repo_full_name


class IssueComment(ApiModel):
    id: int
    body: str = ""
    user: User | None = None
    created_at: datetime
    updated_at: datetime
    html_url: str


class CheckOutput(ApiModel):
    """What a check-run shows: a title, a Markdown summary, and optional details."""

    title: str
    summary: str
    text: str | None = None


class CheckRun(ApiModel):
    id: int
    name: str
    head_sha: str
    status: str
    conclusion: str | None = None
    html_url: str | None = None
    external_id: str | None = None
    details_url: str | None = None


class CollaboratorPermission(ApiModel):
    """``role_name`` is the one to authorise on: ``permission`` folds maintain into write.
    ``user`` is the account the answer is about (its id survives a change of login)."""

    role_name: str
    permission: str
    user: User | None = None


class Reaction(ApiModel):
    id: int
    content: str


class GitRef(ApiModel):
    ref: str
    sha: str


class Installation(ApiModel):
    id: int
    account: User | None = None


class WebhookDelivery(ApiModel):
    """One delivery attempt, as listed by ``GET /app/hook/deliveries``."""

    id: int
    guid: str
    delivered_at: datetime
    redelivery: bool
    status: str
    status_code: int
    event: str
    action: str | None = None
    installation_id: int | None = None
    repository_id: int | None = None


def github_time(moment: datetime) -> str:
    """GitHub's timestamp form, ``YYYY-MM-DDTHH:MM:SSZ``."""
    if moment.tzinfo is None:
        raise ValueError("timestamps sent to GitHub must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
