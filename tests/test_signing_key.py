"""The signing key is made once: concurrent first uses end up with the one key on disk."""

from __future__ import annotations

import threading
from pathlib import Path

from bot.runs.signing import load_or_create_signer


def test_concurrent_first_uses_share_one_key(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing-key.pem"
    start = threading.Barrier(8)
    found: list[str] = []

    def first_use() -> None:
        start.wait()
        found.append(load_or_create_signer(path, announce=False).public_key_hex)

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    on_disk = load_or_create_signer(path, announce=False).public_key_hex
    assert found == [on_disk] * 8
    assert (path.stat().st_mode & 0o777) == 0o600
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
