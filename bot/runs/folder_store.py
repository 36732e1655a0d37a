"""The run store in the local data folder (the default): each run is the folder
``<data dir>/runs/<run id>/`` itself, locked with ``flock`` on ``<data dir>/locks/<run id>.lock``.

Artifacts are written ahead: the new bytes go to a temporary file ``.<name>.<random>.tmp``
(fsynced), the audit line recording their sha256 is appended (fsynced), and only then is the file
renamed into place. A crash leaves the old file or the new one; `settle` finishes a rename whose
line was written, discards a temporary file whose line was not, and cuts an audit line the crash
tore in half.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.errors import GwiError
from bot.runs.atomic import TEMP_SUFFIX, commit_temp, write_temp
from bot.runs.audit import Chain, append_line
from bot.runs.bundle import RunNotFound, last_recorded_hashes
from bot.runs.ids import ARTIFACT_NAMES, AUDIT_LOG, check_artifact_name, check_run_id
from bot.runs.store import RunStore
from bot.schemas.common import sha256_hex


class FolderRunStore(RunStore):
    """All runs under one data dir."""

    def __init__(self, data_dir: Path, signing_key: Path, *,
                 key_in_work_tree: bool = False) -> None:
        super().__init__(signing_key, key_in_work_tree=key_in_work_tree)
        self.data_dir = data_dir
        self.runs_dir = data_dir / "runs"
        self.locks_dir = data_dir / "locks"

    # -- paths (this backend's own; nothing outside bot/runs uses them) -------------------------
    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / check_run_id(run_id)

    def artifact_path(self, run_id: str, name: str) -> Path:
        return self.run_dir(run_id) / check_artifact_name(name)

    def location(self, run_id: str, name: str | None = None) -> str:
        folder = self.run_dir(run_id)
        return str(folder / check_artifact_name(name) if name else folder)

    def exists(self, run_id: str) -> bool:
        return (self.run_dir(run_id) / AUDIT_LOG).is_file()

    def list_ids(self, since: str | None = None) -> list[str]:
        try:
            names = sorted(os.listdir(self.runs_dir))
        except FileNotFoundError:
            return []
        ids = []
        for entry in names:
            try:
                check_run_id(entry)
            except GwiError:
                continue
            if since is not None and entry[:16] < since:
                continue
            if self.exists(entry):  # a folder a crash left before its first event is not a run
                ids.append(entry)
        return ids

    # -- reading ---------------------------------------------------------------------------------
    def read_bytes(self, run_id: str, name: str) -> bytes | None:
        path = self.artifact_path(run_id, name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            if not self.exists(run_id):
                raise RunNotFound(f"no run {run_id} under {self.runs_dir}") from None
            return None

    def snapshot(self, run_id: str) -> dict[str, bytes]:
        # Each file is read whole (every write is an atomic rename or a complete append); only
        # the lock keeps a writer from coming between two of these reads (`export` takes it).
        files = {name: self.read_bytes(run_id, name) for name in ARTIFACT_NAMES}
        return {name: data for name, data in files.items() if data is not None}

    def export(self, run_id: str, dest: Path) -> Path:
        if not self.exists(run_id):
            raise RunNotFound(f"no run {run_id} under {self.runs_dir}")
        with self.locked(run_id):  # no writer between two reads of the run's files
            return super().export(run_id, dest)

    @contextmanager
    def materialise(self, run_id: str) -> Iterator[Path]:
        """The run folder itself: it is the standard folder already (read it, never write)."""
        if not self.exists(run_id):
            raise RunNotFound(f"no run {run_id} under {self.runs_dir}")
        yield self.run_dir(run_id)

    # -- writing ---------------------------------------------------------------------------------
    @contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        self.locks_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.locks_dir / f"{check_run_id(run_id)}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def append(self, run_id: str, line: bytes, artifact: tuple[str, bytes] | None) -> None:
        folder = self.run_dir(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        if artifact is None:
            append_line(folder / AUDIT_LOG, line)
            return
        target = self.artifact_path(run_id, artifact[0])
        tmp = write_temp(target, artifact[1])
        append_line(folder / AUDIT_LOG, line)
        commit_temp(tmp, target)

    def settle(self, run_id: str, raw_log: bytes, chain: Chain) -> list[str]:
        folder = self.run_dir(run_id)
        notes: list[str] = []
        if chain.torn_tail:
            # An append that a crash cut short never completed; it is not part of the chain.
            with open(folder / AUDIT_LOG, "r+b") as fh:
                fh.truncate(len(raw_log) - len(chain.torn_tail))
                fh.flush()
                os.fsync(fh.fileno())
            notes.append(f"discarded an incomplete audit line of {len(chain.torn_tail)} bytes")
        return notes + _settle_temp_files(folder, last_recorded_hashes(chain.events))

    def remove(self, run_id: str) -> None:
        shutil.rmtree(self.run_dir(run_id))
        (self.locks_dir / f"{check_run_id(run_id)}.lock").unlink(missing_ok=True)


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
