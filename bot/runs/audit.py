"""The audit log: append-only JSON Lines, each line chained to the one before by its sha256.

The pure half builds and checks lines; `bot.runs.handle.RunHandle._append` is the only code that
appends one, through its store (`append_line` here is the folder store's write; PostgreSQL stores
the same bytes as a row).

A line is the canonical JSON (`bot.schemas.common.canonical_json`) of the event including its
``hash``; ``hash`` is the sha256 of the canonical JSON of the event without it, and ``prev`` is
the previous line's ``hash`` (64 zeros for the first line).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import JsonValue, ValidationError

from bot.schemas.audit import GENESIS_HASH, AuditAction, AuditEvent, event_body
from bot.schemas.common import canonical_json, sha256_hex
from bot.schemas.run import Actor


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_line(
    *,
    seq: int,
    ts: datetime,
    run_id: str,
    actor: Actor,
    action: AuditAction,
    data: Mapping[str, JsonValue],
    prev: str,
) -> tuple[bytes, AuditEvent]:
    """The exact bytes of one log line (with its newline) and the event they hold."""
    body: dict[str, Any] = {
        "seq": seq,
        "ts": _iso(ts),
        "run_id": run_id,
        "actor": actor.model_dump(mode="json"),
        "action": action.value,
        "data": dict(data),
        "prev": prev,
    }
    body["hash"] = sha256_hex(canonical_json(body))
    line = canonical_json(body) + b"\n"
    return line, AuditEvent.model_validate(body)


class ChainError(Exception):
    """The log is not an intact chain; ``line`` is the 1-based number of the first bad line."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"audit.log line {line}: {message}")
        self.line = line


@dataclass(frozen=True)
class Chain:
    events: tuple[AuditEvent, ...]
    torn_tail: bytes  # bytes after the last newline: an append cut short (empty when intact)

    @property
    def head(self) -> str:
        return self.events[-1].hash if self.events else GENESIS_HASH

    @property
    def next_seq(self) -> int:
        return len(self.events)


def parse_chain(raw: bytes, run_id: str) -> Chain:
    """Check every line of a log: its canonical form, its hash, its link, its seq and run id.

    Raises `ChainError` naming the first line that is wrong. Bytes after the final newline are
    returned as ``torn_tail`` rather than judged: the caller decides whether a torn append is
    acceptable (recovery) or an error (verification).
    """
    cut = raw.rfind(b"\n")
    lines = raw[:cut].split(b"\n") if cut >= 0 else []
    tail = raw[cut + 1 :]
    events: list[AuditEvent] = []
    prev = GENESIS_HASH
    for number, line in enumerate(lines, start=1):
        try:
            event = AuditEvent.model_validate_json(line)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise ChainError(number, f"not a valid event ({where}: {first['msg']})") from None
        dumped = event_body(event.model_dump(mode="json"))
        dumped["ts"] = _iso(event.ts)
        if sha256_hex(canonical_json(dumped)) != event.hash:
            raise ChainError(number, "its hash does not match its content (edited)")
        if canonical_json({**dumped, "hash": event.hash}) != line:
            raise ChainError(number, "it is not in canonical form (edited)")
        if event.seq != number - 1:
            raise ChainError(
                number, f"seq is {event.seq}, expected {number - 1} (lines deleted or reordered)"
            )
        if event.prev != prev:
            raise ChainError(
                number, "prev does not match the line before (lines deleted, inserted or reordered)"
            )
        if event.run_id != run_id:
            raise ChainError(number, f"it belongs to run {event.run_id}, not {run_id}")
        events.append(event)
        prev = event.hash
    return Chain(events=tuple(events), torn_tail=tail)


def append_line(path: Path, line: bytes) -> None:
    """Append one complete line and fsync it before returning."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
