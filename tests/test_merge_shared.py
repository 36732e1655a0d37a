"""Checks on the shared real conflicts (skipped when ../shared is not beside the checkout)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from bot.cli import main
from bot.merge import merge_bytes
from bot.merge.checks import has_conflict_markers

pytestmark = pytest.mark.shared


def sample(root: Path, every: int) -> list[Path]:
    folders = sorted(
        p for project in root.iterdir() if project.is_dir() for p in project.iterdir() if p.is_dir()
    )
    return folders[::every]


def test_plain_merge_is_git_merge_file_on_real_conflicts(shared_merge_scenarios: Path) -> None:
    for folder in sample(shared_merge_scenarios, 23):
        data = [(folder / w).read_bytes() for w in ("base", "ours", "theirs")]
        path = json.loads((folder / "meta.json").read_text())["path"]
        ours = merge_bytes(data[0], data[1], data[2], path, resolve=False)
        git = subprocess.run(
            [
                "git",
                "merge-file",
                "-p",
                "--diff3",
                "-L",
                "ours",
                "-L",
                "base",
                "-L",
                "theirs",
                str(folder / "ours"),
                str(folder / "base"),
                str(folder / "theirs"),
            ],
            capture_output=True,
            check=False,
        )
        if ours.refused is None and b"\r" not in b"".join(data):
            assert ours.to_bytes() == git.stdout, folder.name


def test_merge_batch_on_real_conflicts_claims_no_file_with_markers(
    shared_merge_scenarios: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    for folder in sample(shared_merge_scenarios, 9):
        target = source / f"{folder.parent.name}-{folder.name}"
        target.mkdir(parents=True)
        for name in ("base", "ours", "theirs", "meta.json"):
            shutil.copy(folder / name, target / name)  # no "expected": the batch never needs it
    assert main(["merge-batch", str(source), str(tmp_path / "out")]) == 0
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    ]
    assert len(rows) == len(list(source.iterdir()))
    settled = 0
    for row in rows:
        result = (tmp_path / "out" / row["scenario"] / "result").read_text(errors="replace")
        settled += row["regions_resolved"]
        if row["resolved"]:
            assert not has_conflict_markers(result), row["scenario"]
            assert "conflict" not in row["strategies"]
        else:
            assert "conflict" in row["strategies"] or "refused" in row
    assert settled > 0
