"""An open run: the one artifact writer, the one audit append, the one state change.

Every public operation of a handle ends by *sealing*: ``run.json`` is rewritten with the seq of
the last event it has seen, and an ``artifact_written`` event records its hash. So an intact log
always ends with the seal of ``run.json`` (then, once the run has finished, the signature), which
is what lets `bot.runs.verify` notice lines cut off its end. Every seal carries an Ed25519
signature of its place in the chain and of the ``run.json`` it seals, so no state can be written
without the key; cutting a log back to an earlier seal is caught by the anchors published
outside the bundle (`bot.runs.verify`).

Artifacts are written ahead: the store keeps the new bytes aside, the ``artifact_written`` event
with their sha256 is appended, and only then do the bytes become the artifact (a rename in the
folder store, the same transaction as the line in PostgreSQL: `bot.runs.store.RunStore.append`).
A crash at any point leaves either the old artifact or the new one, and reopening the run
finishes or discards the interrupted write (`bot.runs.reopen`), recording what it did.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from pydantic import JsonValue, ValidationError

from bot.errors import GwiError
from bot.runs.audit import Chain, build_line
from bot.runs.bundle import (
    SYSTEM,
    RunFinished,
    SchemaRejected,
    audit_signature_message,
    seal_signature_message,
    validation_errors,
)
from bot.runs.ids import AUDIT_LOG, check_artifact_name
from bot.runs.signing import Signer
from bot.schemas import ARTIFACT_SCHEMAS
from bot.schemas.audit import AuditAction, AuditEvent
from bot.schemas.base import Schema
from bot.schemas.common import sha256_hex, utcnow
from bot.schemas.run import Actor, RunContext, StateEntry
from bot.schemas.state import TERMINAL, Outcome, RunState, check_outcome, check_transition

S = TypeVar("S", bound=Schema)


class Bundles(Protocol):
    """What a handle needs of the store that keeps its run (`bot.runs.store.RunStore`)."""

    @property
    def signer(self) -> Signer: ...

    def append(self, run_id: str, line: bytes, artifact: tuple[str, bytes] | None) -> None: ...

    def read_bytes(self, run_id: str, name: str) -> bytes | None: ...

    def read_model(self, run_id: str, name: str, model: type[S]) -> S | None: ...


class RunHandle:
    """A locked, open run. Only valid inside `RunStore.open` / `RunStore.create`."""

    def __init__(self, store: Bundles, ctx: RunContext, chain: Chain) -> None:
        self.store = store
        self.ctx = ctx
        self._events: list[AuditEvent] = list(chain.events)

    @property
    def run_id(self) -> str:
        return self.ctx.run_id

    @property
    def events(self) -> tuple[AuditEvent, ...]:
        return tuple(self._events)

    @property
    def finished(self) -> bool:
        return self.ctx.state in TERMINAL

    # -- the one audit append ------------------------------------------------------------------
    def _append(
        self, actor: Actor, action: AuditAction, data: Mapping[str, JsonValue],
        artifact: tuple[str, bytes] | None = None,
    ) -> AuditEvent:
        """Append one event; ``artifact`` (name, bytes) is written ahead of it, and is the
        run's once the line is stored (the store does both: `RunStore.append`)."""
        prev = self._events[-1].hash if self._events else "0" * 64
        line, event = build_line(
            seq=len(self._events),
            ts=utcnow(),
            run_id=self.ctx.run_id,
            actor=actor,
            action=action,
            data=data,
            prev=prev,
        )
        self.store.append(self.run_id, line, artifact)
        self._events.append(event)
        return event

    def _write_ahead(
        self, actor: Actor, name: str, data: bytes, extra: Mapping[str, JsonValue]
    ) -> str:
        digest = sha256_hex(data)
        self._append(
            actor,
            AuditAction.ARTIFACT_WRITTEN,
            {"artifact": name, "sha256": digest, "bytes": len(data), **extra},
            artifact=(check_artifact_name(name), data),
        )
        return digest

    def _seal(self, actor: Actor = SYSTEM) -> None:
        """Rewrite run.json to include every event so far, and record its hash."""
        last = self._events[-1]
        self.ctx = self.ctx.model_copy(update={"updated_at": last.ts, "audit_seq": last.seq})
        RunContext.model_validate(self.ctx.model_dump())  # model_copy does not validate
        data = self.ctx.model_dump_json(indent=2).encode() + b"\n"
        signer = self.store.signer
        message = seal_signature_message(self.run_id, last.seq + 1, last.hash, sha256_hex(data))
        self._write_ahead(actor, "run.json", data, {
            "public_key": signer.public_key_hex, "signature": signer.sign(message)})
        if self.finished:
            self._sign()

    def _sign(self) -> None:
        head = self._events[-1]
        signer = self.store.signer
        self._append(
            SYSTEM,
            AuditAction.AUDIT_SIGNED,
            {
                "algorithm": "ed25519",
                "public_key": signer.public_key_hex,
                "signed_seq": head.seq,
                "signed_hash": head.hash,
                "signature": signer.sign(audit_signature_message(self.run_id, head.seq, head.hash)),
            },
        )

    def _check_open(self) -> None:
        if self.finished:
            raise RunFinished(
                f"run {self.run_id} is {self.ctx.state.value}: its bundle is sealed and signed"
            )

    # -- public operations ---------------------------------------------------------------------
    def record(
        self, action: AuditAction, data: Mapping[str, JsonValue], actor: Actor = SYSTEM
    ) -> AuditEvent:
        """Append one event (not a transition, not an artifact) to the audit log."""
        if action in (
            AuditAction.STATE_TRANSITION,
            AuditAction.ARTIFACT_WRITTEN,
            AuditAction.RUN_CREATED,
            AuditAction.AUDIT_SIGNED,
        ):
            raise GwiError(f"{action.value} events are written by the store itself")
        self._check_open()
        event = self._append(actor, action, data)
        self._seal(actor)
        return event

    def write_artifact(self, name: str, content: Schema | str | bytes, actor: Actor = SYSTEM) -> str:
        """Write one artifact atomically and audit its sha256; returns that sha256."""
        check_artifact_name(name)
        if name in ("run.json", AUDIT_LOG):
            raise GwiError(f"{name} is written by the store itself")
        self._check_open()
        schema = ARTIFACT_SCHEMAS.get(name)
        if schema is not None:
            if not isinstance(content, schema):
                raise GwiError(f"{name} takes a {schema.__name__}, not {type(content).__name__}")
            if getattr(content, "run_id", self.run_id) != self.run_id:
                raise GwiError(f"{name} belongs to another run")
            self._check_cross_artifact(name, content)
            data = content.model_dump_json(indent=2).encode() + b"\n"
        elif isinstance(content, Schema):
            raise GwiError(f"{name} is text, not JSON")
        else:
            data = content.encode() if isinstance(content, str) else content
        digest = self._write_ahead(actor, name, data, {})
        self._seal(actor)
        return digest

    def _check_cross_artifact(self, name: str, content: Schema) -> None:
        patch_hash = getattr(content, "patch_sha256", None)
        if patch_hash is None:
            return
        patch = self.store.read_bytes(self.run_id, "patch.diff")
        if patch is None or sha256_hex(patch) != patch_hash:
            raise GwiError(f"{name} names a patch hash that is not the sha256 of patch.diff")

    def read_model(self, name: str, model: type[S]) -> S | None:
        return self.store.read_model(self.run_id, name, model)

    def read_bytes(self, name: str) -> bytes | None:
        return self.store.read_bytes(self.run_id, name)

    def transition(
        self,
        target: RunState,
        *,
        reason: str,
        actor: Actor = SYSTEM,
        outcome: Outcome | None = None,
        error: str | None = None,
    ) -> RunContext:
        """The one way a run changes state: checked, audited and sealed in one step."""
        self._check_open()
        check_transition(self.ctx.state, target)
        check_outcome(target, outcome)
        if (target is RunState.FAILED) != (error is not None):
            raise GwiError("a failed run, and only a failed run, carries an error")
        event = self._append(
            actor,
            AuditAction.STATE_TRANSITION,
            {
                "from": self.ctx.state.value,
                "to": target.value,
                "reason": reason,
                "outcome": outcome.value if outcome else None,
                "error": error,
            },
        )
        self.ctx = apply_transition(self.ctx, event)
        self._seal(actor)
        return self.ctx

    def fail(self, error: str, actor: Actor = SYSTEM) -> RunContext:
        """Record an error event and end the run as failed."""
        self._check_open()
        self._append(actor, AuditAction.ERROR, {"error": error})
        return self.transition(
            RunState.FAILED, reason="error", actor=actor, outcome=Outcome.ERROR, error=error
        )

    def accept(
        self, name: str, model: type[S], raw: str | bytes | Mapping[str, Any], actor: Actor
    ) -> S:
        """Validate an agent's output against its schema, or fail the run and say why.

        Invalid output is never repaired: `schema_validation_failed` goes to the audit log with
        pydantic's errors, the run becomes `failed`, and `SchemaRejected` is raised.
        """
        self._check_open()
        try:
            if isinstance(raw, (str, bytes)):
                value = model.model_validate_json(raw)
            else:
                value = model.model_validate(raw)
        except ValidationError as exc:
            self._append(
                actor,
                AuditAction.SCHEMA_VALIDATION_FAILED,
                {"artifact": name, "schema": model.__name__, "errors": validation_errors(exc)},
            )
            message = f"{actor.id} produced an invalid {name}: {exc.errors()[0]['msg']}"
            self.fail(message, actor=SYSTEM)
            raise SchemaRejected(message) from None
        return value


def apply_transition(ctx: RunContext, event: AuditEvent) -> RunContext:
    data = event.data
    target = RunState(str(data["to"]))
    outcome = Outcome(str(data["outcome"])) if data.get("outcome") else None
    error = str(data["error"]) if data.get("error") is not None else None
    entry = StateEntry(state=target, at=event.ts, reason=str(data.get("reason") or ""))
    return RunContext.model_validate(
        {
            **ctx.model_dump(),
            "state": target,
            "history": [*ctx.history, entry],
            "outcome": outcome,
            "error": error,
            "updated_at": event.ts,
        }
    )
