"""What the fake GitHub holds (repositories, pulls, comments, check runs, tokens, deliveries) and
what it records (calls, violations, faults)."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization

from tests.fake_github.spec import TIME_FORMAT, Operation


@dataclass
class Violation:
    kind: str
    method: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.method} {self.path}: {self.detail}"


@dataclass
class Call:
    method: str
    path: str
    operation_id: str | None
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int = 0
    fault: Fault | None = None


@dataclass
class Fault:
    """One injected misbehaviour. ``status`` None with a ``delay`` answers normally, late."""

    status: int | None = None
    retry_after: float | None = None
    reset_in: float | None = None  # primary rate limit: x-ratelimit-remaining 0, reset then
    delay: float = 0.0
    message: str | None = None
    after_acting: bool = False  # do the operation, then answer with ``status`` anyway


@dataclass
class Installation:
    id: int
    account: str
    permissions: dict[str, str]
    repositories: set[str] = field(default_factory=set)  # lower-case full names


@dataclass
class Token:
    token: str
    installation_id: int
    repositories: set[str] | None  # lower-case full names; None: the whole installation
    permissions: dict[str, str]
    expires_at: datetime
    revoked: bool = False
    user: str | None = None  # a user's token (the OAuth web flow, ops_oauth.py): whose


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    installation_id: int | None
    default_branch: str
    private: bool
    clone_url: str
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # ref -> path -> bytes
    refs: dict[str, str] = field(default_factory=dict)  # "heads/main" -> sha
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> role_name

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Pull:
    repo: str
    number: int
    title: str
    user: str
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    state: str = "open"
    draft: bool = False
    maintainer_can_modify: bool = False
    head_repo: str | None = None  # fork's full name; None: same repository
    merged: bool = False
    mergeable: bool | None = True
    body: str = ""
    labels: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Comment:
    id: int
    repo: str
    issue_number: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime
    via_app: bool = False
    history: list[str] = field(default_factory=list)  # earlier bodies, oldest first


@dataclass
class CheckRun:
    id: int
    repo: str
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: datetime
    completed_at: datetime | None
    output: dict[str, Any]
    details_url: str | None
    external_id: str | None
    history: list[dict[str, Any]] = field(default_factory=list)  # every request body, in order


@dataclass
class Reaction:
    id: int
    comment_id: int
    content: str
    user: str


@dataclass
class Delivery:
    id: int
    guid: str
    event: str
    action: str | None
    delivered_at: datetime
    status_code: int = 200
    redelivery: bool = False
    installation_id: int | None = None
    repository_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


class Answer(Exception):
    """Short-circuits a handler with GitHub's answer (an error status, usually)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
        violation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.violation = violation


@dataclass
class Context:
    op: Operation
    request: web.Request
    params: dict[str, Any]
    query: dict[str, str]
    body: Any
    token: Token | None
    repo: Repo | None


@functools.cache
def _public_key(private_key_pem: str) -> bytes:
    """What GitHub keeps of an App's key: the public half, to verify the App's JWTs."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def _git_sha(kind: str, payload: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(payload)}\0".encode() + payload).hexdigest()


# -- the fake --------------------------------------------------------------------------------
