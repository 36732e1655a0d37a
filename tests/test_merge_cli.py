"""The merge commands: merge-file's contract, the git merge driver on real branches, merge-batch."""

from __future__ import annotations

import builtins
import json
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from tests.conftest import commit_files, git

CONFLICTING = ("a\nb\nc\n", "a\nB\nc\n", "a\nbb\nc\n")


def write3(folder: Path, base: str | bytes, ours: str | bytes, theirs: str | bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("base", base), ("ours", ours), ("theirs", theirs)):
        (folder / name).write_bytes(text.encode() if isinstance(text, str) else text)


def test_merge_file_writes_a_clean_merge_into_current(tmp_path: Path) -> None:
    write3(tmp_path, "a\nb\nc\nd\n", "A\nb\nc\nd\n", "a\nb\nc\nD\n")
    code = main(
        ["merge-file", str(tmp_path / "ours"), str(tmp_path / "base"), str(tmp_path / "theirs")]
    )
    assert code == 0
    assert (tmp_path / "ours").read_text() == "A\nb\nc\nD\n"


def test_merge_file_stdout_with_conflicts_exits_1_and_keeps_current(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    write3(tmp_path, *CONFLICTING)
    code = main(
        [
            "merge-file",
            "-p",
            "-L",
            "mine",
            "-L",
            "old",
            "-L",
            "yours",
            str(tmp_path / "ours"),
            str(tmp_path / "base"),
            str(tmp_path / "theirs"),
        ]
    )
    assert code == 1
    out = capsysbinary.readouterr().out.decode()
    assert out == "a\n<<<<<<< mine\nB\n||||||| old\nb\n=======\nbb\n>>>>>>> yours\nc\n"
    assert (tmp_path / "ours").read_text() == "a\nB\nc\n"


def test_merge_file_missing_input_is_an_error_above_1(tmp_path: Path) -> None:
    write3(tmp_path, *CONFLICTING)
    code = main(
        ["merge-file", str(tmp_path / "ours"), str(tmp_path / "nope"), str(tmp_path / "theirs")]
    )
    assert code == 2


def test_merge_file_leaves_a_binary_file_alone(tmp_path: Path) -> None:
    write3(tmp_path, b"\0a", b"\0b", b"\0c")
    code = main(
        ["merge-file", str(tmp_path / "ours"), str(tmp_path / "base"), str(tmp_path / "theirs")]
    )
    assert code == 1
    assert (tmp_path / "ours").read_bytes() == b"\0b"


def gwi_command() -> str:
    return f"{shlex.quote(sys.executable)} -m bot"


def test_merge_driver_merges_two_real_branches(conflict_repo: Path) -> None:
    repo = conflict_repo
    (repo / ".gitattributes").write_text("*.py merge=gwi\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "use the gwi merge driver")
    git(repo, "config", "merge.gwi.name", "gwi conflict resolver")
    git(repo, "config", "merge.gwi.driver", f"{gwi_command()} merge-driver %O %A %B %P")
    proc = subprocess.run(
        ["git", "-C", str(repo), "merge", "--no-edit", "feature"],
        capture_output=True,
        text=True,
        check=False,
    )
    merged = (repo / "app.py").read_text()
    assert "<<<<<<<" not in merged or proc.returncode != 0
    # Whatever the driver decided, git saw it through the driver's exit code.
    if proc.returncode == 0:
        assert "def feature" in merged and "def mainline" in merged
    else:
        assert "<<<<<<< ours" in merged


def test_merge_driver_reports_conflicts_to_git(make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"notes.txt": CONFLICTING[0], ".gitattributes": "*.txt merge=gwi\n"})
    git(repo, "config", "merge.gwi.driver", f"{gwi_command()} merge-driver %O %A %B %P")
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"notes.txt": CONFLICTING[2]}, "theirs")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"notes.txt": CONFLICTING[1]}, "ours")
    proc = subprocess.run(
        ["git", "-C", str(repo), "merge", "--no-edit", "feature"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    merged = (repo / "notes.txt").read_text()
    assert "<<<<<<< ours\nB\n||||||| base\nb\n=======\nbb\n>>>>>>> theirs\n" in merged
    assert "notes.txt" in git(repo, "diff", "--name-only", "--diff-filter=U")


def test_merge_batch_writes_results_and_never_reads_expected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, out = tmp_path / "in", tmp_path / "out"
    write3(source / "one", "a\nb\nc\nd\n", "A\nb\nc\nd\n", "a\nb\nc\nD\n")
    (source / "one" / "meta.json").write_text(json.dumps({"path": "x.txt"}))
    write3(source / "two", *CONFLICTING)
    (source / "two" / "expected").write_text("must not be read")
    opened: list[str] = []
    real_open = builtins.open

    def guarded_open(file: object, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(file))
        assert Path(str(file)).name != "expected", "merge-batch read an expected file"
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    # Every file merge-batch touches goes through open(): guard it (chmod does not stop root).
    monkeypatch.setattr(builtins, "open", guarded_open)
    code = main(["merge-batch", str(source), str(out)])
    monkeypatch.undo()
    assert code == 0
    assert any(name.endswith("base") for name in opened)  # the guard saw the reads
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert [r["scenario"] for r in rows] == ["one", "two"]
    assert rows[0]["resolved"] is True and rows[0]["strategies"] == []
    assert rows[1]["resolved"] is False and rows[1]["strategies"] == ["conflict"]
    assert all(isinstance(r["seconds"], float) for r in rows)
    assert (out / "one" / "result").read_text() == "A\nb\nc\nD\n"
    assert "<<<<<<< ours" in (out / "two" / "result").read_text()
