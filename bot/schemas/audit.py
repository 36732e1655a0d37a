"""One line of `audit.log`: the event, the previous line's hash and its own."""

from __future__ import annotations

import enum
from typing import Annotated, Any

from pydantic import Field, JsonValue

from bot.schemas.base import Schema
from bot.schemas.common import Sha256Hex, UtcDatetime
from bot.schemas.run import Actor, RunId

GENESIS_HASH = "0" * 64


class AuditAction(enum.StrEnum):
    RUN_CREATED = "run_created"
    STATE_TRANSITION = "state_transition"
    ARTIFACT_WRITTEN = "artifact_written"
    SCHEMA_VALIDATION_FAILED = "schema_validation_failed"
    ERROR = "error"
    RECOVERED = "recovered"  # an interrupted write was completed or discarded on reopening
    AGENT_CALLED = "agent_called"  # an LLM provider was asked for a step's output
    APPROVAL_REFUSED = "approval_refused"
    APPROVAL_RECORDED = "approval_recorded"
    APPLY_STARTED = "apply_started"
    APPLY_REFUSED = "apply_refused"
    COMMIT_CREATED = "commit_created"
    REF_UPDATED = "ref_updated"  # a branch moved by compare-and-swap (local apply or push)
    NOTE = "note"  # anything else a person should see in the trail (a command, a stale head)
    AUDIT_SIGNED = "audit_signed"  # the last line of a finished run: the signature of the head


class AuditEvent(Schema):
    seq: Annotated[int, Field(ge=0)]
    ts: UtcDatetime
    run_id: RunId
    actor: Actor
    action: AuditAction
    data: dict[str, JsonValue]
    prev: Sha256Hex
    hash: Sha256Hex


def event_body(event: dict[str, Any]) -> dict[str, Any]:
    """The event as hashed: every field but its own hash."""
    return {k: v for k, v in event.items() if k != "hash"}
