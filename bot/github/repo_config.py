"""Per-repository settings: `.github/gwi.yml`, read from the default branch (never from the pull
request's own branch, which its author controls)."""

from __future__ import annotations

import enum
import fnmatch
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

CONFIG_PATH = ".github/gwi.yml"


class DraftPolicy(enum.StrEnum):
    WAIT = "wait"  # no run until the pull request is ready for review
    RUN = "run"


class Role(enum.StrEnum):
    """GitHub's repository roles, weakest first (`role_name` of the permission API)."""

    READ = "read"
    TRIAGE = "triage"
    WRITE = "write"
    MAINTAIN = "maintain"
    ADMIN = "admin"


ROLE_RANK = {role: rank for rank, role in enumerate(Role)}
_LEGACY = {"admin": Role.ADMIN, "write": Role.WRITE, "read": Role.READ}


def role_of(role_name: str | None, permission: str | None) -> Role | None:
    """The role a collaborator holds. A custom role (an organisation can name its own) counts as
    the legacy permission GitHub reports beside it; no access at all is None."""
    if role_name is not None and role_name in {r.value for r in Role}:
        return Role(role_name)
    return _LEGACY.get(permission or "")


def role_meets(held: Role | None, needed: Role) -> bool:
    return held is not None and ROLE_RANK[held] >= ROLE_RANK[needed]


PathGlob = Annotated[str, StringConstraints(min_length=1, max_length=300)]


class RepoConfig(BaseModel):
    """What a maintainer can set in `.github/gwi.yml`; every field has a safe default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auto_run: bool = True  # run on every push to a pull request (else only on /gwi run)
    drafts: DraftPolicy = DraftPolicy.WAIT
    ignore_paths: list[PathGlob] = Field(default_factory=list, max_length=100)
    approver_role: Role = Role.WRITE  # the least role that may approve, run and abort
    allow_self_approval: bool = True  # may the pull request's author approve its patch?

    @field_validator("approver_role")
    @classmethod
    def _at_least_triage(cls, role: Role) -> Role:
        # On a public repository everyone can read: `read` would let anyone approve a push.
        if ROLE_RANK[role] < ROLE_RANK[Role.TRIAGE]:
            raise ValueError(f"{role.value} is too weak to approve a push: anyone who can read"
                             " the repository would be an approver (use triage or higher)")
        return role

    def ignored(self, path: str) -> bool:
        return any(fnmatch.fnmatchcase(path, glob) for glob in self.ignore_paths)


class RepoConfigError(ValueError):
    """`.github/gwi.yml` is not valid: the message says where, for the check-run."""


def parse_repo_config(text: bytes | None) -> RepoConfig:
    """The settings in ``text`` (the file's bytes; None when there is no file: defaults)."""
    if text is None or not text.strip():
        return RepoConfig()
    try:
        doc = yaml.safe_load(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise RepoConfigError(f"{CONFIG_PATH} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "it does not parse"
        raise RepoConfigError(f"{CONFIG_PATH} is not valid YAML{where}: {problem}") from None
    if doc is None:
        return RepoConfig()
    if not isinstance(doc, dict):
        raise RepoConfigError(f"{CONFIG_PATH} must be a mapping of settings")
    try:
        return RepoConfig.model_validate(doc)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "the file"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise RepoConfigError(f"{CONFIG_PATH}: {where}: {message}") from None
