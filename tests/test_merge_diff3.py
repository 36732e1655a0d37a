"""The plain line-level merge finds git's regions and writes git's diff3 output, byte for byte."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.merge.diff import diff
from bot.merge.diff3 import merge_chunks
from bot.merge.engine import merge_texts
from bot.merge.lines import split_lines


def git_diff3(tmp: Path, base: str, ours: str, theirs: str) -> str:
    for name, text in (("base", base), ("ours", ours), ("theirs", theirs)):
        (tmp / name).write_bytes(text.encode())
    proc = subprocess.run(
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
            str(tmp / "ours"),
            str(tmp / "base"),
            str(tmp / "theirs"),
        ],
        capture_output=True,
        check=False,
        env={**os.environ},
    )
    assert proc.returncode >= 0
    return proc.stdout.decode()


def plain(base: str, ours: str, theirs: str) -> str:
    return merge_texts(base, ours, theirs, "plain.txt", resolve=False).text


def test_split_lines_keeps_endings_and_a_missing_last_newline() -> None:
    assert split_lines("a\nb\r\nc") == ["a\n", "b\r\n", "c"]
    assert split_lines("") == []
    assert split_lines("a\n") == ["a\n"]
    assert split_lines("a\x0cb\n") == ["a\x0cb\n"]


def test_diff_finds_a_replacement_and_an_insertion() -> None:
    assert diff([1, 2, 3], [1, 4, 3]) == [(1, 2, 1, 2)]
    assert diff([1, 2], [1, 5, 2]) == [(1, 1, 1, 2)]
    assert diff([], []) == []


def test_diff_slides_an_ambiguous_insertion_down_like_git() -> None:
    # Inserting "a b" into "a b" gives "a b a b": git reports the second pair as new.
    assert diff([1, 2], [1, 2, 1, 2]) == [(2, 2, 2, 4)]


def test_touching_changes_conflict_and_separate_ones_merge() -> None:
    base = [1, 2, 3, 4, 5]
    chunks = merge_chunks(base, [1, 9, 3, 4, 5], [1, 2, 8, 4, 5])
    assert [c.conflict for c in chunks] == [True]
    chunks = merge_chunks(base, [1, 9, 3, 4, 5], [1, 2, 3, 8, 5])
    assert [c.conflict for c in chunks] == [False, False]
    assert chunks[1].take_theirs


def test_the_same_change_on_both_sides_is_no_conflict() -> None:
    assert [c.conflict for c in merge_chunks([1, 2, 3], [1, 7, 3], [1, 7, 3])] == [False]


def test_conflict_output_is_git_diff3(tmp_path: Path) -> None:
    base, ours, theirs = "a\nb\nc\n", "a\nB\nc\n", "a\nbb\nc\n"
    expected = "a\n<<<<<<< ours\nB\n||||||| base\nb\n=======\nbb\n>>>>>>> theirs\nc\n"
    assert plain(base, ours, theirs) == expected == git_diff3(tmp_path, base, ours, theirs)


def test_missing_final_newline_and_crlf_markers_match_git(tmp_path: Path) -> None:
    for base, ours, theirs in (
        ("a\nb", "a\nB", "a\nbb"),
        ("a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n", "a\r\nbb\r\nc\r\n"),
        ("", "x\n", "y\n"),
    ):
        assert plain(base, ours, theirs) == git_diff3(tmp_path, base, ours, theirs)


LINES = st.lists(st.sampled_from(["a\n", "b\n", "c\n", "\n", "}\n", "d\n"]), max_size=12)


@st.composite
def three_versions(draw: st.DrawFn) -> tuple[str, str, str]:
    base = draw(LINES)

    def edit(lines: list[str]) -> list[str]:
        out = list(lines)
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(out)))
            cut = draw(st.integers(0, 2))
            out[at : at + cut] = draw(LINES.map(lambda x: x[:3]))
        return out

    return "".join(base), "".join(edit(base)), "".join(edit(base))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(three_versions())
def test_plain_merge_equals_git_merge_file(tmp_path: Path, versions: tuple[str, str, str]) -> None:
    base, ours, theirs = versions
    assert plain(base, ours, theirs) == git_diff3(tmp_path, base, ours, theirs)
