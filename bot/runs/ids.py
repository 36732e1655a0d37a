"""Run ids and artifact names: generated unguessable, checked before they touch a path."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from bot.errors import GwiError
from bot.schemas.run import RUN_ID_RE

JSON_ARTIFACTS: tuple[str, ...] = (
    "run.json",
    "triage.json",
    "plan.json",
    "resolve.json",
    "review.json",
    "approval.json",
)
TEXT_ARTIFACTS: tuple[str, ...] = ("plan.md", "patch.diff")
AUDIT_LOG = "audit.log"
#: Every file a run folder may hold, in the order a person reads them.
ARTIFACT_NAMES: tuple[str, ...] = (
    "run.json",
    "triage.json",
    "plan.md",
    "plan.json",
    "patch.diff",
    "resolve.json",
    "review.json",
    "approval.json",
    AUDIT_LOG,
)


class UnsafeName(GwiError):
    """A run id or artifact name that is malformed or could leave the runs folder."""


def new_run_id(now: datetime) -> str:
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    token = base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()[:20]
    return f"{stamp}-{token}"


def run_created_at(run_id: str) -> datetime:
    """The UTC second a run was created, as its id records it."""
    return datetime.strptime(check_run_id(run_id)[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID_RE.fullmatch(run_id):
        raise UnsafeName(f"not a run id: {run_id!r} (expected like 20260101T000000Z-<20 letters>)")
    return run_id


def check_artifact_name(name: str) -> str:
    if name not in ARTIFACT_NAMES:
        raise UnsafeName(
            f"unknown artifact {name!r}; a run holds only: {', '.join(ARTIFACT_NAMES)}"
        )
    return name
