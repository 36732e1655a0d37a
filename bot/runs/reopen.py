"""Reopening a run after a crash: let the store repair its own storage (a torn audit line, a
write in flight), check every artifact against its recorded hash, and rebuild run.json from the
log if needed."""

from __future__ import annotations

from typing import Protocol

from pydantic import ValidationError

from bot.runs.audit import Chain, ChainError, parse_chain
from bot.runs.bundle import SYSTEM, RunDamaged, is_sealed, last_recorded_hashes
from bot.runs.handle import Bundles, RunHandle, apply_transition
from bot.runs.ids import AUDIT_LOG
from bot.schemas.audit import AuditAction, AuditEvent
from bot.schemas.common import sha256_hex
from bot.schemas.run import RunContext


class Reopenable(Bundles, Protocol):
    """A store a run can be reopened from: it reads back a sealed run.json, and repairs what a
    crash left in its own storage (`bot.runs.store.RunStore.settle`)."""

    def read_context(self, run_id: str) -> RunContext: ...

    def settle(self, run_id: str, raw_log: bytes, chain: Chain) -> list[str]: ...


def recover(store: Reopenable, run_id: str) -> RunHandle:
    """Open a run whose last writer may have crashed, and record what had to be repaired."""
    raw = store.read_bytes(run_id, AUDIT_LOG) or b""
    try:
        chain = parse_chain(raw, run_id)
    except ChainError as exc:
        raise RunDamaged(f"run {run_id}: {exc}") from None
    if not chain.events or chain.events[0].action is not AuditAction.RUN_CREATED:
        raise RunDamaged(f"run {run_id}: its audit log does not start with run_created")
    notes = store.settle(run_id, raw, chain)
    chain = Chain(events=chain.events, torn_tail=b"")
    for name, digest in last_recorded_hashes(chain.events).items():
        data = store.read_bytes(run_id, name)
        if data is None or sha256_hex(data) != digest:
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
