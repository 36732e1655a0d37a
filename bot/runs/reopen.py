"""Reopening a run after a crash: cut a torn audit line, finish or discard interrupted writes,
check every artifact against its recorded hash, and rebuild run.json from the log if needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from bot.runs.atomic import TEMP_SUFFIX, commit_temp
from bot.runs.audit import ChainError, parse_chain
from bot.runs.bundle import SYSTEM, RunDamaged, is_sealed, last_recorded_hashes
from bot.runs.handle import Bundles, RunHandle, apply_transition
from bot.runs.ids import ARTIFACT_NAMES, AUDIT_LOG
from bot.schemas.audit import AuditAction, AuditEvent
from bot.schemas.common import sha256_hex
from bot.schemas.run import RunContext


class Reopenable(Bundles, Protocol):
    """A store a run can be reopened from: it also reads back a sealed run.json."""

    def read_context(self, run_id: str) -> RunContext: ...


def recover(store: Reopenable, run_id: str) -> RunHandle:
    """Open a run whose last writer may have crashed, and record what had to be repaired."""
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
    sealed = is_sealed(chain.events)
    if sealed:
        ctx = store.read_context(run_id)  # its hash was just checked against the log
    else:
        ctx = _context_from_log(run_id, chain.events)
    handle = RunHandle(store, ctx, chain)
    if notes or not sealed:
        if not sealed:
            notes.append("completed an interrupted step: run.json rebuilt from the log")
        handle._append(SYSTEM, AuditAction.RECOVERED, {"notes": list(notes)})
        handle._seal()  # signs too, if the interrupted step finished the run
    elif handle.finished and chain.events[-1].action is not AuditAction.AUDIT_SIGNED:
        handle._sign()
    return handle


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


def _context_from_log(run_id: str, events: tuple[AuditEvent, ...]) -> RunContext:
    """Rebuild the run context from the log alone: run_created, then every transition."""
    try:
        ctx = RunContext.model_validate(events[0].data["context"])
    except (ValidationError, KeyError) as exc:
        raise RunDamaged(f"run {run_id}: run_created does not hold a valid context ({exc})") from None
    for event in events[1:]:
        if event.action is AuditAction.STATE_TRANSITION:
            ctx = apply_transition(ctx, event)
    return ctx
