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
from tests.support import commit_files, git

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


def use_driver(repo: Path, pattern: str) -> None:
    (repo / ".gitattributes").write_text(f"{pattern} merge=gwi\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "use the gwi merge driver")
    git(repo, "config", "merge.gwi.name", "gwi conflict resolver")
    git(repo, "config", "merge.gwi.driver", f"{gwi_command()} merge-driver %O %A %B %P")


def branches(repo: Path, path: str, base: bytes, feature: bytes, main_: bytes,
             name: str = "feature") -> Path:
    """``name`` and main each change ``path`` from ``base``."""
    (repo / path).write_bytes(base)
    git(repo, "add", path)
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", name)
    (repo / path).write_bytes(feature)
    git(repo, "commit", "-q", "-am", "feature")
    git(repo, "checkout", "-q", "main")
    (repo / path).write_bytes(main_)
    git(repo, "commit", "-q", "-am", "main")
    return repo


def merge(repo: Path, name: str = "feature") -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(repo), "merge", "--no-edit", name],
                          capture_output=True, text=True, check=False)


def test_merge_driver_settles_a_conflict_git_leaves(make_repo: Callable[..., Path]) -> None:
    # Each side rewrote a different one of two neighbouring entries of a manifest: a pair
    # (adjacent_entries, manifest) the shipped policy enables.
    base = b'{\n  "name": "x",\n  "description": "old",\n  "license": "MIT",\n  "main": "i.js"\n}\n'
    feature = base.replace(b'"old"', b'"new words"')
    main_ = base.replace(b'"MIT"', b'"ISC"')
    plain = branches(make_repo(), "package.json", base, feature, main_)
    assert merge(plain).returncode != 0  # git alone: a conflict
    git(plain, "merge", "--abort")
    use_driver(plain, "package.json")
    proc = merge(plain)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (plain / "package.json").read_bytes() == feature.replace(b'"MIT"', b'"ISC"')
    assert git(plain, "log", "-1", "--format=%P").count(" ") == 1  # a merge commit
    assert "adjacent_entries" in proc.stderr


def test_merge_driver_hands_a_file_it_refuses_to_gits_own_merge(
    make_repo: Callable[..., Path]
) -> None:
    """Not UTF-8: gwi does not touch it, git's text merge does, as with no driver at all."""
    base = "caf\u00e9\nline 2\nline 3\nline 4\n".encode("latin-1")
    feature = base.replace(b"line 2", b"LINE 2")
    main_ = base.replace(b"line 4", b"LINE 4")
    repo = branches(make_repo(), "notes.txt", base, feature, main_)
    use_driver(repo, "*.txt")
    proc = merge(repo)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (repo / "notes.txt").read_bytes() == base.replace(b"line 2", b"LINE 2").replace(
        b"line 4", b"LINE 4")
    assert "not UTF-8" in proc.stderr

    branches(repo, "other.txt", base, base.replace(b"line 2", b"two"),
             base.replace(b"line 2", b"deux"), name="clash")
    assert merge(repo, "clash").returncode != 0
    assert b"<<<<<<< ours\ndeux\n||||||| base\nline 2\n=======\ntwo\n>>>>>>> theirs\n" in (
        repo / "other.txt").read_bytes()


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


def test_a_crash_in_a_command_exits_2_not_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """To git a driver's 1 means "conflicts remain"; a bug must read as an error."""
    write3(tmp_path, *CONFLICTING)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr("bot.merge.engine.merge_bytes", broken)
    files = [str(tmp_path / n) for n in ("base", "ours", "theirs")]
    assert main(["merge-driver", *files, "notes.txt"]) == 2
    assert "gwi: internal error: RuntimeError: a bug" in capsys.readouterr().err
    assert (tmp_path / "ours").read_text() == CONFLICTING[1]
