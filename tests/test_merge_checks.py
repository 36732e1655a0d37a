"""The whole-file checks the resolver and the reviewer share: parse, lost lines, markers."""

from __future__ import annotations

import pytest

from bot.merge.checks import has_conflict_markers, lost_added_lines, parses


@pytest.mark.parametrize(
    ("path", "good", "bad"),
    [
        ("a/b.py", "def f():\n    return 1\n", "def f(:\n"),
        ("x.js", "const a = [1, 2];\n", "const a = [1, 2;\n"),
        ("x.ts", "let a: number = 1;\n", "let a: = 1;\n"),
        ("x.tsx", "const e = <div>{a}</div>;\n", "const e = <div>{a</div>;\n"),
        ("package.json", '{"a": [1, 2]}\n', '{"a": [1, 2],}\n'),
        ("pyproject.toml", '[a]\nb = "c"\n', "[a]\nb = \n"),
        ("ci.yml", "a:\n  - b\n  - !Ref c\n", "a: [b\n"),
    ],
)
def test_parses_tells_good_from_broken(path: str, good: str, bad: str) -> None:
    assert parses(path, good) is True
    assert parses(path, bad) is False


def test_parses_is_none_for_languages_not_checked() -> None:
    assert parses("README.rst", "anything <<<") is None
    assert parses("Makefile", "x") is None


def test_conflict_markers_are_git_s_not_rst_underlines() -> None:
    assert has_conflict_markers("a\n<<<<<<< ours\nb\n")
    assert has_conflict_markers("a\n>>>>>>> theirs\n")
    assert has_conflict_markers("||||||| base\n")
    assert not has_conflict_markers("Title\n=======\n")
    assert not has_conflict_markers("x <<<<<<< y\n")


def test_lost_added_lines_finds_an_uncontested_addition_dropped() -> None:
    base = "a\nb\nc\nd\n"
    ours = "a\nOURS\nb\nc\nd\n"
    theirs = "a\nb\nc\nTHEIRS\nd\n"
    assert lost_added_lines(base, ours, theirs, "a\nOURS\nb\nc\nTHEIRS\nd\n") == []
    assert lost_added_lines(base, ours, theirs, "a\nb\nc\nTHEIRS\nd\n") == ["OURS\n"]


def test_lost_added_lines_exempts_lines_the_other_side_also_changed() -> None:
    base = "a\nb\nc\n"
    ours = "a\nB1\nc\n"
    theirs = "a\nB2\nc\n"
    assert lost_added_lines(base, ours, theirs, "a\nB2\nc\n") == []


def test_two_insertions_at_one_place_must_both_survive() -> None:
    base = "a\nz\n"
    ours = "a\nx\nz\n"
    theirs = "a\ny\nz\n"
    assert lost_added_lines(base, ours, theirs, "a\nx\nz\n") == ["y\n"]
    assert lost_added_lines(base, ours, theirs, "a\nx\ny\nz\n") == []


def test_insertion_inside_a_span_the_other_side_deleted_is_exempt() -> None:
    base = "a\nb\nc\nd\n"
    ours = "a\nd\n"
    theirs = "a\nb\nNEW\nc\nd\n"
    assert lost_added_lines(base, ours, theirs, "a\nd\n") == []
