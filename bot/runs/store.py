"""The run bundle on disk: the one artifact writer, the one audit append, the one state change.

A run is the folder ``<data dir>/runs/<run id>/``. Every change to it happens through a
`RunHandle`, obtained with `RunStore.open` (or `RunStore.create`), which holds the run's lock.
Every public operation of a handle ends by *sealing*: ``run.json`` is rewritten with the seq of
the last event it has seen, and an ``artifact_written`` event records its hash. So an intact log
always ends with the seal of ``run.json`` (then, once the run has finished, the signature), which
is what lets `bot.runs.verify` notice lines cut off its end.

Artifacts are written ahead: the new bytes go to a temporary file, the ``artifact_written``
event with their sha256 is appended, and only then is the file renamed into place. A crash at
any point leaves either the old file or the new one, and reopening the run finishes or discards
the interrupted write (`RunHandle` recovery), recording what it did.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import JsonValue, ValidationError

from bot.errors import GwiError
from bot.runs.atomic import TEMP_SUFFIX, commit_temp, write_temp
from bot.runs.audit import Chain, ChainError, append_line, build_line, parse_chain
from bot.runs.ids import (
    ARTIFACT_NAMES,
    AUDIT_LOG,
    check_artifact_name,
    check_run_id,
    new_run_id,
)
from bot.runs.signing import Signer, load_or_create_signer
from bot.runs.state import TERMINAL, Outcome, RunState, check_outcome, check_transition
from bot.schemas import ARTIFACT_SCHEMAS
from bot.schemas.audit import AuditAction, AuditEvent
from bot.schemas.base import Schema
from bot.schemas.common import canonical_json, sha256_hex, utcnow
from bot.schemas.run import Actor, ActorType, RunContext, StateEntry
from bot.settings import Settings

SYSTEM = Actor(type=ActorType.SYSTEM, id="gwi")
S = TypeVar("S", bound=Schema)


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


class RunStore:
    """All runs under one data dir."""

    def __init__(self, data_dir: Path, signing_key: Path) -> None:
        self.data_dir = data_dir
        self.runs_dir = data_dir / "runs"
        self.locks_dir = data_dir / "locks"
        self.signing_key = signing_key
        self._signer: Signer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RunStore:
        return cls(settings.data_dir, settings.signing_key_path)

    @property
    def signer(self) -> Signer:
        """The signing key, loaded (or created, with a message) the first time a run needs it."""
        if self._signer is None:
            self._signer = load_or_create_signer(self.signing_key)
        return self._signer

    # -- paths -------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / check_run_id(run_id)

    def artifact_path(self, run_id: str, name: str) -> Path:
        return self.run_dir(run_id) / check_artifact_name(name)

    def exists(self, run_id: str) -> bool:
        return (self.run_dir(run_id) / AUDIT_LOG).is_file()

    def list_ids(self) -> list[str]:
        if not self.runs_dir.is_dir():
            return []
        ids = []
        for entry in sorted(os.listdir(self.runs_dir)):
            try:
                check_run_id(entry)
            except GwiError:
                continue
            if self.exists(entry):  # a folder a crash left before its first event is not a run
                ids.append(entry)
        return ids

    # -- reading (no lock: every write is atomic) ------------------------------------------------
    def read_bytes(self, run_id: str, name: str) -> bytes | None:
        path = self.artifact_path(run_id, name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            if not self.exists(run_id):
                raise RunNotFound(f"no run {run_id} under {self.runs_dir}") from None
            return None

    def read_context(self, run_id: str) -> RunContext:
        ctx = self.read_model(run_id, "run.json", RunContext)
        if ctx is None:
            raise RunNotFound(f"run {run_id} has no run.json")
        return ctx

    def read_model(self, run_id: str, name: str, model: type[S]) -> S | None:
        """Read and validate a JSON artifact; an invalid one is an error, never a dict."""
        if ARTIFACT_SCHEMAS.get(name) is not model:
            raise GwiError(f"{name} is not a {model.__name__} artifact")
        raw = self.read_bytes(run_id, name)
        if raw is None:
            return None
        try:
            return model.model_validate_json(raw)
        except ValidationError as exc:
            raise RunDamaged(f"run {run_id}: {name} is not valid: {exc.errors()[0]['msg']}") from None

    def artifacts(self, run_id: str) -> list[ArtifactInfo]:
        out = []
        for name in ARTIFACT_NAMES:
            raw = self.read_bytes(run_id, name)
            if raw is not None:
                out.append(ArtifactInfo(name, len(raw), sha256_hex(raw)))
        return out

    def read_chain(self, run_id: str) -> Chain:
        raw = self.read_bytes(run_id, AUDIT_LOG)
        if raw is None:
            raise RunNotFound(f"no run {run_id}")
        return parse_chain(raw, run_id)

    # -- writing ---------------------------------------------------------------------------------
    @contextmanager
    def _locked(self, run_id: str) -> Iterator[None]:
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.locks_dir / f"{check_run_id(run_id)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def create(self, context_fields: Mapping[str, Any], actor: Actor = SYSTEM) -> str:
        """Create a queued run from the context's fields (all but id, times, state, history)."""
        now = utcnow()
        run_id = new_run_id(now)
        ctx = RunContext.model_validate(
            {
                **context_fields,
                "run_id": run_id,
                "created_at": now,
                "updated_at": now,
                "state": RunState.QUEUED,
                "history": [StateEntry(state=RunState.QUEUED, at=now, reason="created")],
                "outcome": None,
                "error": None,
                "audit_seq": 0,
            }
        )
        folder = self.run_dir(run_id)
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        with self._locked(run_id):
            folder.mkdir()
            handle = RunHandle(self, ctx, Chain(events=(), torn_tail=b""))
            handle._append(actor, AuditAction.RUN_CREATED, {"context": ctx.model_dump(mode="json")})
            handle._seal(actor)
        return run_id

    @contextmanager
    def open(self, run_id: str) -> Iterator[RunHandle]:
        """Lock the run, finish or discard any write a crash interrupted, and hand it over."""
        if not self.exists(run_id):
            raise RunNotFound(f"no run {run_id} under {self.runs_dir}")
        with self._locked(run_id):
            yield RunHandle._recover(self, run_id)


class RunHandle:
    """A locked, open run. Only valid inside `RunStore.open` / `RunStore.create`."""

    def __init__(self, store: RunStore, ctx: RunContext, chain: Chain) -> None:
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
        self, actor: Actor, action: AuditAction, data: Mapping[str, JsonValue]
    ) -> AuditEvent:
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
        append_line(self.store.run_dir(self.run_id) / AUDIT_LOG, line)
        self._events.append(event)
        return event

    def _write_ahead(
        self, actor: Actor, name: str, data: bytes, extra: Mapping[str, JsonValue]
    ) -> str:
        target = self.store.artifact_path(self.run_id, name)
        tmp = write_temp(target, data)
        digest = sha256_hex(data)
        self._append(
            actor,
            AuditAction.ARTIFACT_WRITTEN,
            {"artifact": name, "sha256": digest, "bytes": len(data), **extra},
        )
        commit_temp(tmp, target)
        return digest

    def _seal(self, actor: Actor = SYSTEM) -> None:
        """Rewrite run.json to include every event so far, and record its hash."""
        last = self._events[-1]
        self.ctx = self.ctx.model_copy(update={"updated_at": last.ts, "audit_seq": last.seq})
        RunContext.model_validate(self.ctx.model_dump())  # model_copy does not validate
        data = self.ctx.model_dump_json(indent=2).encode() + b"\n"
        self._write_ahead(actor, "run.json", data, {})
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
        self.ctx = _apply_transition(self.ctx, event)
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

    # -- recovery ----------------------------------------------------------------------------------
    @classmethod
    def _recover(cls, store: RunStore, run_id: str) -> RunHandle:
        folder = store.run_dir(run_id)
        log_path = folder / AUDIT_LOG
        raw = log_path.read_bytes()
        try:
            chain = parse_chain(raw, run_id)
        except ChainError as exc:
            raise RunDamaged(f"run {run_id}: {exc}") from None
        if not chain.events or chain.events[0].action is not AuditAction.RUN_CREATED:
            raise RunDamaged(f"run {run_id}: its audit log does not start with run_created")
        notes: list[str] = []
        if chain.torn_tail:
            # An append that a crash cut short never completed; it is not part of the chain.
            with open(log_path, "r+b") as fh:
                fh.truncate(len(raw) - len(chain.torn_tail))
                fh.flush()
                os.fsync(fh.fileno())
            notes.append(f"discarded an incomplete audit line of {len(chain.torn_tail)} bytes")
        recorded = last_recorded_hashes(chain.events)
        notes += _settle_temp_files(folder, recorded)
        for name, digest in recorded.items():
            path = folder / name
            if not path.exists() or sha256_hex(path.read_bytes()) != digest:
                raise RunDamaged(
                    f"run {run_id}: {name} does not match the sha256 its audit log recorded"
                )
        sealed = _is_sealed(chain.events)
        if sealed:
            ctx = store.read_context(run_id)  # its hash was just checked against the log
        else:
            ctx = _context_from_log(run_id, chain.events)
        handle = cls(store, ctx, chain)
        if notes or not sealed:
            if not sealed:
                notes.append("completed an interrupted step: run.json rebuilt from the log")
            handle._append(SYSTEM, AuditAction.RECOVERED, {"notes": list(notes)})
            handle._seal()  # signs too, if the interrupted step finished the run
        elif handle.finished and chain.events[-1].action is not AuditAction.AUDIT_SIGNED:
            handle._sign()
        return handle


def last_recorded_hashes(events: tuple[AuditEvent, ...] | list[AuditEvent]) -> dict[str, str]:
    """Each artifact's sha256 as its latest ``artifact_written`` event recorded it."""
    out: dict[str, str] = {}
    for event in events:
        if event.action is AuditAction.ARTIFACT_WRITTEN:
            out[str(event.data["artifact"])] = str(event.data["sha256"])
    return out


def _is_sealed(events: tuple[AuditEvent, ...]) -> bool:
    tail = list(events)
    if tail and tail[-1].action is AuditAction.AUDIT_SIGNED:
        tail.pop()
    return bool(tail) and tail[-1].action is AuditAction.ARTIFACT_WRITTEN and (
        tail[-1].data.get("artifact") == "run.json"
    )


def _settle_temp_files(folder: Path, recorded: dict[str, str]) -> list[str]:
    """Finish renames whose audit event was written; delete temp files that never were."""
    notes = []
    for entry in sorted(folder.iterdir()):
        if not (entry.name.startswith(".") and entry.name.endswith(TEMP_SUFFIX)):
            continue
        name = entry.name[1:].rsplit(".", 2)[0]
        target = folder / name
        digest = sha256_hex(entry.read_bytes())
        current = sha256_hex(target.read_bytes()) if target.exists() else None
        if name in ARTIFACT_NAMES and recorded.get(name) == digest and current != digest:
            commit_temp(entry, target)
            notes.append(f"completed the interrupted write of {name}")
        else:
            entry.unlink()
            notes.append(f"discarded an unrecorded partial write of {name}")
    return notes


def _apply_transition(ctx: RunContext, event: AuditEvent) -> RunContext:
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


def _context_from_log(run_id: str, events: tuple[AuditEvent, ...]) -> RunContext:
    """Rebuild the run context from the log alone: run_created, then every transition."""
    try:
        ctx = RunContext.model_validate(events[0].data["context"])
    except (ValidationError, KeyError) as exc:
        raise RunDamaged(f"run {run_id}: run_created does not hold a valid context ({exc})") from None
    for event in events[1:]:
        if event.action is AuditAction.STATE_TRANSITION:
            ctx = _apply_transition(ctx, event)
    return ctx

