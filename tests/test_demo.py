"""`make demo` runs the whole pipeline offline on the bundled real conflicts, in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.runs.folder_store import FolderRunStore


def test_the_demo_runs_approves_applies_and_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "demo-data"
    monkeypatch.setenv("GWI_DATA_DIR", str(data))
    assert main(["demo"]) == 0  # how long it takes is `make demo`'s own line, not a test's
    out = capsys.readouterr().out
    for expected in ("complexity", "plan:", "review: approvable", "patch hash: sha256:",
                     "new merge commit", "OK:", "signed by"):
        assert expected in out
    [run_id] = FolderRunStore(data, data / "signing-key.pem").list_ids()  # under GWI_DATA_DIR
    assert run_id in out
