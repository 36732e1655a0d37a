"""What a run bundle is, apart from where it is kept: its errors, what its signature covers,
and the facts its audit log records (each artifact's last hash, whether the log ends sealed)."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import JsonValue, ValidationError

from bot.errors import GwiError
from bot.schemas.audit import AuditAction, AuditEvent
from bot.schemas.common import canonical_json
from bot.schemas.run import Actor, ActorType

SYSTEM = Actor(type=ActorType.SYSTEM, id="gwi")


class RunNotFound(GwiError):
    pass


class RunDamaged(GwiError):
    """The bundle on disk is not what gwi wrote; it is left as it is for a person to inspect."""


class RunFinished(GwiError):
    """A finished run is sealed and signed: nothing more may be written to it."""


class SchemaRejected(GwiError):
    """An agent's output did not validate; the run has been failed and the errors audited."""


def audit_signature_message(run_id: str, seq: int, head: str) -> bytes:
    """What the signature of a finished run covers: its id and the hash of its last sealed line."""
    return b"gwi-audit-v1\n" + canonical_json({"run_id": run_id, "seq": seq, "hash": head})


def seal_signature_message(run_id: str, seq: int, prev: str, sha256: str) -> bytes:
    """What the signature inside each seal of ``run.json`` covers: the run, the seal's place in
    the chain (its seq and the hash of the line before, which covers every earlier line) and the
    sha256 of the ``run.json`` it seals. So no state can be written, and no line before it
    changed, without the key."""
    return b"gwi-seal-v1\n" + canonical_json(
        {"run_id": run_id, "seq": seq, "prev": prev, "sha256": sha256})


def validation_errors(exc: ValidationError) -> list[JsonValue]:
    """Pydantic's errors in a form fit for the audit log (no input echo: it may be huge)."""
    return [
        {"loc": [str(p) for p in err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors()[:50]
    ]


@dataclass(frozen=True)
class ArtifactInfo:
    name: str
    size: int
    sha256: str


def last_recorded_hashes(events: tuple[AuditEvent, ...] | list[AuditEvent]) -> dict[str, str]:
    """Each artifact's sha256 as its latest ``artifact_written`` event recorded it."""
    out: dict[str, str] = {}
    for event in events:
        if event.action is AuditAction.ARTIFACT_WRITTEN:
            out[str(event.data["artifact"])] = str(event.data["sha256"])
    return out


def is_sealed(events: tuple[AuditEvent, ...]) -> bool:
    tail = list(events)
    if tail and tail[-1].action is AuditAction.AUDIT_SIGNED:
        tail.pop()
    return bool(tail) and tail[-1].action is AuditAction.ARTIFACT_WRITTEN and (
        tail[-1].data.get("artifact") == "run.json"
    )
