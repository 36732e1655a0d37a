"""The run store's one interface: finding and reading bundles, creating and locking runs, and
materialising a run as the standard ``<run id>/`` folder; wherever the bundles are kept.

A run is a set of artifacts and its audit log. `RunStore` holds what every backend shares (the
reading and validating, `create`, `open` with its crash recovery, pruning); a backend supplies
the storage below it: where the bytes live, the per-run lock, and `append`, which stores one audit
line (and, written ahead of it, the artifact it records). Two backends implement it: the local
data folder (`bot.runs.folder_store`, the default) and PostgreSQL (`bot.runs.pg_bundles`), picked
from the settings by `bot.runs.store_factory.open_run_store`.

Every change to a run happens through a `bot.runs.handle.RunHandle`, obtained with
`RunStore.open` (or `RunStore.create`), which holds the run's lock; reading needs no lock,
because every write is atomic. Code outside ``bot/runs`` reads a bundle by path only through
`RunStore.materialise` (or `RunStore.export`), which hands over a standard run folder.
"""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from bot.errors import GwiError
from bot.runs.atomic import atomic_write, fsync_dir
from bot.runs.audit import Chain, parse_chain
from bot.runs.bundle import SYSTEM, ArtifactInfo, RunDamaged, RunNotFound
from bot.runs.handle import RunHandle
from bot.runs.ids import ARTIFACT_NAMES, AUDIT_LOG, check_run_id, new_run_id
from bot.runs.reopen import recover
from bot.runs.signing import Signer, load_or_create_signer
from bot.schemas import ARTIFACT_SCHEMAS
from bot.schemas.audit import AuditAction
from bot.schemas.base import Schema
from bot.schemas.common import sha256_hex, utcnow
from bot.schemas.run import Actor, RunContext, StateEntry
from bot.schemas.state import TERMINAL, RunState

S = TypeVar("S", bound=Schema)


class RunStore(ABC):
    """All runs of one deployment, wherever they are kept."""

    def __init__(self, signing_key: Path, *, key_in_work_tree: bool = False) -> None:
        self.signing_key = signing_key
        self.key_in_work_tree = key_in_work_tree
        self._signer: Signer | None = None

    @property
    def signer(self) -> Signer:
        """The signing key, loaded (or created, with a message) the first time a run needs it."""
        if self._signer is None:
            self._signer = load_or_create_signer(
                self.signing_key, allow_in_work_tree=self.key_in_work_tree)
        return self._signer

    # -- the storage a backend supplies ----------------------------------------------------------
    @abstractmethod
    def location(self, run_id: str, name: str | None = None) -> str:
        """Where the run (or its artifact ``name``) is kept, for people: a path, or the database
        and how to export it."""

    @abstractmethod
    def exists(self, run_id: str) -> bool:
        """Whether the run has its first audit line (a crash before it leaves no run)."""

    @abstractmethod
    def list_ids(self, since: str | None = None) -> list[str]:
        """Every run's id, oldest first; with ``since`` (a ``YYYYmmddTHHMMSSZ`` stamp) only the
        runs created at or after it (run ids begin with their creation time)."""

    @abstractmethod
    def read_bytes(self, run_id: str, name: str) -> bytes | None:
        """An artifact's bytes as last committed (``audit.log``: every line, in order), or None
        when the run has none; `RunNotFound` when there is no such run."""

    @abstractmethod
    def snapshot(self, run_id: str) -> dict[str, bytes]:
        """Every artifact of the run and its audit log (absent ones left out), as one state the
        run was in (PostgreSQL: one transaction; the folder store: under the run's lock, which
        its `export` takes); `RunNotFound` when there is no such run."""

    @abstractmethod
    def append(self, run_id: str, line: bytes, artifact: tuple[str, bytes] | None) -> None:
        """Store one audit line, durably, after ``artifact`` (name, bytes) when there is one: the
        artifact is written ahead and becomes the run's only once its line is stored. Only
        `RunHandle._append` calls it, with the run locked."""

    @abstractmethod
    def locked(self, run_id: str) -> AbstractContextManager[None]:
        """Hold the run's lock: one writer at a time, across processes (and hosts)."""

    @abstractmethod
    def settle(self, run_id: str, raw_log: bytes, chain: Chain) -> list[str]:
        """Repair what a crash mid-write left in the storage itself (a torn line, a write in
        flight), under the lock; returns what was done, for the ``recovered`` event."""

    @abstractmethod
    def remove(self, run_id: str) -> None:
        """Delete every byte of a run (under its lock; only `delete_finished` calls it)."""

    def close(self) -> None:
        """Release what the store holds (connections); the folder store holds nothing."""

    # -- materialising the standard folder ------------------------------------------------------
    def export(self, run_id: str, dest: Path) -> Path:
        """Write the run as the standard folder ``<dest>/<run id>/``, byte for byte (audit.log
        lines exactly as hashed), for `gwi runs verify` offline. Refuses a folder that exists."""
        files = self.snapshot(check_run_id(run_id))
        folder = dest / run_id
        try:
            folder.mkdir(parents=True)
        except FileExistsError:
            raise GwiError(f"{folder} exists already: give another destination") from None
        for name, data in files.items():
            atomic_write(folder / name, data)
        fsync_dir(folder)
        return folder

    @contextmanager
    def materialise(self, run_id: str) -> Iterator[Path]:
        """The run as a standard ``<run id>/`` folder, for as long as the block runs: the only
        way code outside ``bot/runs`` reads a bundle by path (verification, archives)."""
        if not self.exists(run_id):
            raise RunNotFound(f"no run {run_id} in {self.location(run_id)}")
        with tempfile.TemporaryDirectory(prefix="gwi-bundle-") as tmp:
            yield self.export(run_id, Path(tmp))

    # -- reading (no lock: every write is atomic) ------------------------------------------------
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
        for name, raw in sorted(self.snapshot(run_id).items(),
                                key=lambda item: ARTIFACT_NAMES.index(item[0])):
            out.append(ArtifactInfo(name, len(raw), sha256_hex(raw)))
        return out

    def read_chain(self, run_id: str) -> Chain:
        raw = self.read_bytes(run_id, AUDIT_LOG)
        if raw is None:
            raise RunNotFound(f"no run {run_id}")
        return parse_chain(raw, run_id)

    # -- writing ---------------------------------------------------------------------------------
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
        with self.locked(run_id):
            handle = RunHandle(self, ctx, Chain(events=(), torn_tail=b""))
            handle._append(actor, AuditAction.RUN_CREATED, {"context": ctx.model_dump(mode="json")})
            handle._seal(actor)
        return run_id

    def delete_finished(self, run_id: str) -> bool:
        """Delete a finished run's bundle (pruning); an unfinished run is never deleted."""
        if not self.exists(run_id):
            return False
        with self.locked(run_id):
            if self.read_context(run_id).state not in TERMINAL:
                return False
            self.remove(run_id)
        return True

    @contextmanager
    def open(self, run_id: str) -> Iterator[RunHandle]:
        """Lock the run, finish or discard any write a crash interrupted, and hand it over."""
        if not self.exists(run_id):
            raise RunNotFound(f"no run {run_id} in {self.location(run_id)}")
        with self.locked(run_id):
            yield recover(self, run_id)
