"""All runs under one data dir: finding and reading bundles, creating and locking runs.

A run is the folder ``<data dir>/runs/<run id>/``. Every change to it happens through a
`bot.runs.handle.RunHandle`, obtained with `RunStore.open` (or `RunStore.create`), which holds
the run's lock; reading needs no lock, because every write is atomic.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from bot.errors import GwiError
from bot.runs.audit import Chain, parse_chain
from bot.runs.bundle import SYSTEM, ArtifactInfo, RunDamaged, RunNotFound
from bot.runs.handle import RunHandle
from bot.runs.ids import ARTIFACT_NAMES, AUDIT_LOG, check_artifact_name, check_run_id, new_run_id
from bot.runs.reopen import recover
from bot.runs.signing import Signer, load_or_create_signer
from bot.schemas import ARTIFACT_SCHEMAS
from bot.schemas.audit import AuditAction
from bot.schemas.base import Schema
from bot.schemas.common import sha256_hex, utcnow
from bot.schemas.run import Actor, RunContext, StateEntry
from bot.schemas.state import TERMINAL, RunState
from bot.settings import Settings

S = TypeVar("S", bound=Schema)


class RunStore:
    """All runs under one data dir."""

    def __init__(self, data_dir: Path, signing_key: Path, *,
                 key_in_work_tree: bool = False) -> None:
        self.data_dir = data_dir
        self.runs_dir = data_dir / "runs"
        self.locks_dir = data_dir / "locks"
        self.signing_key = signing_key
        self.key_in_work_tree = key_in_work_tree
        self._signer: Signer | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> RunStore:
        return cls(settings.data_dir, settings.signing_key_path,
                   key_in_work_tree=settings.key_in_work_tree)

    @property
    def signer(self) -> Signer:
        """The signing key, loaded (or created, with a message) the first time a run needs it."""
        if self._signer is None:
            self._signer = load_or_create_signer(
                self.signing_key, allow_in_work_tree=self.key_in_work_tree)
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

    def delete_finished(self, run_id: str) -> bool:
        """Delete a finished run's bundle (pruning); an unfinished run is never deleted."""
        if not self.exists(run_id):
            return False
        with self._locked(run_id):
            if self.read_context(run_id).state not in TERMINAL:
                return False
            shutil.rmtree(self.run_dir(run_id))
        (self.locks_dir / f"{check_run_id(run_id)}.lock").unlink(missing_ok=True)
        return True

    @contextmanager
    def open(self, run_id: str) -> Iterator[RunHandle]:
        """Lock the run, finish or discard any write a crash interrupted, and hand it over."""
        if not self.exists(run_id):
            raise RunNotFound(f"no run {run_id} under {self.runs_dir}")
        with self._locked(run_id):
            yield recover(self, run_id)
