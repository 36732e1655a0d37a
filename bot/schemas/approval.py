"""`approval.json`: who approved which exact patch on which head and base, signed."""

from __future__ import annotations

import enum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from bot.schemas.base import Schema
from bot.schemas.common import GitSha, Name, Sha256Hex, UtcDatetime, canonical_json
from bot.schemas.run import RunId


class Scope(enum.StrEnum):
    COMMIT = "commit"
    PUSH = "push"


APPROVAL_SCOPE: tuple[Scope, ...] = (Scope.COMMIT, Scope.PUSH)


class ApproverKind(enum.StrEnum):
    LOCAL_USER = "local_user"  # `gwi approve` on this machine
    GITHUB_USER = "github_user"  # a `/gwi approve` comment on the pull request


class Approver(Schema):
    kind: ApproverKind
    login: Name
    id: Annotated[int, Field(ge=1)] | None = None
    role: Name | None = None  # GitHub's role_name when the approval was accepted


class ApprovalComment(Schema):
    id: Annotated[int, Field(ge=1)]
    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]
    created_at: UtcDatetime
    body_sha256: Sha256Hex


class Signature(Schema):
    algorithm: Literal["ed25519"] = "ed25519"
    public_key: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    value: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{128}$")]


class ApprovalRecord(Schema):
    schema_version: Literal[1] = 1
    run_id: RunId
    approver: Approver
    approved_at: UtcDatetime
    scope: list[Scope]
    patch_sha256: Sha256Hex
    base_sha: GitSha
    head_sha: GitSha
    comment: ApprovalComment | None = None
    delivery_id: Name | None = None
    signature: Signature

    @model_validator(mode="after")
    def _consistent(self) -> ApprovalRecord:
        if tuple(self.scope) != APPROVAL_SCOPE:
            raise ValueError("an approval's scope is exactly [commit, push]")
        on_github = self.approver.kind is ApproverKind.GITHUB_USER
        if on_github and (
            self.approver.id is None
            or self.approver.role is None
            or self.comment is None
            or self.delivery_id is None
        ):
            raise ValueError(
                "a GitHub approval names the approver's id and role, the comment and the delivery"
            )
        if not on_github and (self.comment is not None or self.delivery_id is not None):
            raise ValueError("a local approval has no comment or delivery")
        return self

    def signed_bytes(self) -> bytes:
        """What the signature covers: the record's canonical JSON without the signature."""
        return signed_bytes_of(self.model_dump(mode="json", exclude={"signature"}))


def signed_bytes_of(unsigned: dict[str, object]) -> bytes:
    return b"gwi-approval-v1\n" + canonical_json(unsigned)
