"""The few webhook fields gwi acts on, parsed strictly; everything else in a payload is ignored
(payloads grow over time, and older ones lack newer fields)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Account(_Model):
    login: str
    id: int
    type: str = "User"

    @property
    def is_bot(self) -> bool:
        """Apps and bots: GitHub says so in ``type``, and their logins end in ``[bot]``."""
        return self.type != "User" or self.login.endswith("[bot]")


class InstallationRef(_Model):
    id: int


class RepoRef(_Model):
    full_name: str
    clone_url: str | None = None


class BranchRef(_Model):
    ref: str
    sha: str
    repo: RepoRef | None = None


class PullRequestPayload(_Model):
    number: int
    state: str
    draft: bool = False
    head: BranchRef
    base: BranchRef
    user: Account | None = None


class PullRequestEvent(_Model):
    action: str
    pull_request: PullRequestPayload
    repository: RepoRef
    installation: InstallationRef
    changes: dict[str, object] = Field(default_factory=dict)


class IssueLink(_Model):
    """Present on issues that are pull requests."""

    url: str | None = None


class IssuePayload(_Model):
    number: int
    state: str = "open"
    pull_request: IssueLink | None = None
    user: Account | None = None


class CommentPayload(_Model):
    id: int
    body: str = ""
    user: Account
    html_url: str
    created_at: datetime
    updated_at: datetime | None = None


class IssueCommentEvent(_Model):
    action: str
    issue: IssuePayload
    comment: CommentPayload
    repository: RepoRef
    installation: InstallationRef
    sender: Account


class CheckRunApp(_Model):
    id: int


class CheckRunPull(_Model):
    number: int


class CheckRunPayload(_Model):
    id: int
    name: str
    head_sha: str
    external_id: str | None = None
    app: CheckRunApp | None = None
    pull_requests: list[CheckRunPull] = Field(default_factory=list)


class CheckRunEvent(_Model):
    action: str
    check_run: CheckRunPayload
    repository: RepoRef
    installation: InstallationRef
