"""The engine's checks: a strategy's answer is verified before a region is called resolved."""

from __future__ import annotations

import pytest

from bot.merge import Strategy, engine, merge_texts, strategies
from bot.merge.checks import dangling_imports, imported_names_in, python_tree
from bot.merge.model import Conflict, Resolution
from bot.merge.policy import EVERYTHING


@pytest.fixture(autouse=True)
def _every_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about what each strategy proves, so every strategy may fire in every
    kind of file (the shipped policy enables fewer: see test_merge_policy.py)."""
    monkeypatch.setattr(engine, "_POLICY", [EVERYTHING])


BASE = "def f():\n    return 1\n\n\nX = 1\n"
OURS = "def f():\n    return 2\n\n\nX = 1\n"
THEIRS = "def f():\n    return 3\n\n\nX = 1\n"


def answer_with(lines: list[str]) -> object:
    def strategy(conflict: Conflict) -> Resolution:
        return Resolution(lines=lines, strategy=Strategy.SUBSUMED, explanation="test")

    return strategy


@pytest.mark.parametrize(
    ("lines", "why"),
    [
        (["    return (\n"], "breaks the syntax both sides had"),
        (["<<<<<<< ours\n"], "contains a conflict marker"),
        (["    return 2"], "drops the line end in the middle of the file"),
    ],
)
def test_a_bad_answer_turns_back_into_a_conflict(
    monkeypatch: pytest.MonkeyPatch, lines: list[str], why: str
) -> None:
    monkeypatch.setattr(strategies, "STRATEGIES", (answer_with(lines),))
    result = merge_texts(BASE, OURS, THEIRS, "m.py")
    assert not result.clean, why
    assert [r.strategy for r in result.regions] == [Strategy.CONFLICT]
    assert "<<<<<<< ours\n    return 2\n||||||| base\n    return 1\n=======\n" in result.text


def test_a_region_a_check_turned_back_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strategies, "STRATEGIES", (answer_with(["    return (\n"]),))
    [region] = merge_texts(BASE, OURS, THEIRS, "m.py").regions
    assert region.explanation == (
        "subsumed would settle it, but the file would not parse with that; left for a person.")


def test_an_answer_that_loses_an_uncontested_added_line_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = "a\nb\n"
    ours = "a\nOURS\nb\n"
    theirs = "a\nTHEIRS\nb\n"
    monkeypatch.setattr(strategies, "STRATEGIES", (answer_with(["OURS\n"]),))
    assert not merge_texts(base, ours, theirs, "x.txt").clean
    monkeypatch.setattr(strategies, "STRATEGIES", (answer_with(["OURS\n", "THEIRS\n"]),))
    result = merge_texts(base, ours, theirs, "x.txt")
    assert result.clean and result.text == "a\nOURS\nTHEIRS\nb\n"
    assert result.regions[0].resolved and result.regions[0].explanation == "test"


def test_a_good_answer_is_kept_with_its_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strategies, "STRATEGIES", (answer_with(["    return 3\n"]),))
    result = merge_texts(BASE, OURS, THEIRS, "m.py")
    assert result.clean and result.text == THEIRS
    assert result.regions[0].strategy is Strategy.SUBSUMED


def test_unparsable_sides_are_not_held_to_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Python 2 code does not parse as Python 3 on either side: the parse check cannot apply.
    base, ours, theirs = 'print "a"\n', 'print "b"\n', 'print "c"\n'
    monkeypatch.setattr(strategies, "STRATEGIES", (answer_with(['print "c"\n']),))
    assert merge_texts(base, ours, theirs, "old.py").clean


def test_dangling_imports_finds_a_dropped_import_still_read() -> None:
    ours = "import os\nimport sys\nprint(os, sys)\n"
    theirs = "import os\nprint(os)\n"
    merged = python_tree("import os\nprint(os, sys)\n")
    fine = python_tree("import os\nprint(os)\n")
    assert merged is not None and fine is not None
    assert dangling_imports(ours, theirs, merged) == {"sys"}
    assert dangling_imports(ours, theirs, fine) == set()


def test_imported_names_are_read_from_import_lines() -> None:
    text = (
        "import os.path, json as j\n"
        "from a.b import (c,  # note\n    d as e,\n)\n"
        "from . import f; import g\n"
        "    from h import i\n"
        "x = 'import'\n"
    )
    assert imported_names_in(text) == {"os", "j", "c", "e", "f", "i"}


def test_region_fields_report_how_each_region_ended() -> None:
    base = '    "send": "0.1.0",\n' + "x\n" * 5 + "a\n"
    ours = '    "send": "0.2.0",\n' + "x\n" * 5 + "b\n"
    theirs = '    "send": "0.3.0",\n' + "x\n" * 5 + "c\n"
    result = merge_texts(base, ours, theirs, "package.json")
    assert [r.index for r in result.regions] == [0, 1]
    first, second = result.regions
    assert first.resolved and first.strategy is Strategy.VERSION_BUMP and first.lines == 3
    assert not second.resolved and second.strategy is Strategy.CONFLICT
    assert not result.clean and result.refused is None
    assert result.strategies == (Strategy.VERSION_BUMP, Strategy.CONFLICT)
    assert '"send": "0.3.0"' in result.text
