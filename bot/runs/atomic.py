"""Crash-safe file writes: a temporary file beside the target, fsync, rename, fsync the folder."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def temp_path_for(target: Path) -> Path:
    """A fresh temporary name in the target's folder: `.<name>.<random>.tmp`."""
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}")


def write_temp(target: Path, data: bytes) -> Path:
    """Write ``data`` durably to a new temporary file next to ``target``; return its path."""
    tmp = temp_path_for(target)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def commit_temp(tmp: Path, target: Path) -> None:
    """Move a written temporary file over ``target`` and make the rename itself durable."""
    os.replace(tmp, target)
    fsync_dir(target.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(target: Path, data: bytes) -> None:
    """Replace ``target`` with ``data``: after a crash it holds the old bytes or the new, never a
    mix."""
    commit_temp(write_temp(target, data), target)
