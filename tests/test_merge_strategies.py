"""Each strategy on small hand-written conflicts: the cases it settles and the ones it must refuse."""

from __future__ import annotations

from bot.merge import Strategy, merge_texts
from bot.merge.strategies.versions import version_key


def settle(base: str, ours: str, theirs: str, path: str = "notes.txt") -> tuple[Strategy, str]:
    result = merge_texts(base, ours, theirs, path)
    assert len(result.regions) == 1, result.text
    return result.regions[0].strategy, result.text


# --- same_change ---------------------------------------------------------------------------


def test_same_change_differing_in_trailing_whitespace_keeps_the_clean_side() -> None:
    strategy, text = settle("a\nb\nc\n", "a\nB  \nc\n", "a\nB\nc\n")
    assert strategy is Strategy.SAME_CHANGE
    assert text == "a\nB\nc\n"


def test_same_change_does_not_drop_markdown_hard_line_breaks() -> None:
    strategy, text = settle("a\nb\nc\n", "a\nB  \nc\n", "a\nB\nc\n", path="README.md")
    assert strategy is not Strategy.SAME_CHANGE
    assert strategy is Strategy.CONFLICT or "B  \n" in text


# --- version_bump --------------------------------------------------------------------------


def test_version_key_orders_releases_and_prereleases() -> None:
    assert version_key("1.10.0") > version_key("1.9.3")
    assert version_key("2.0.0") > version_key("2.0.0-beta.2")
    assert version_key("2.0.0-beta.2") > version_key("2.0.0-beta.1")
    assert version_key("v1.2") == version_key("1.2.0")


def test_both_sides_bumping_one_dependency_keeps_the_higher_version() -> None:
    base = '{\n  "dependencies": {\n    "send": "0.15.1",\n    "vary": "1.0.0"\n  }\n}\n'
    ours = base.replace('"send": "0.15.1"', '"send": "0.15.3"')
    theirs = base.replace('"send": "0.15.1"', '"send": "0.16.0"')
    strategy, text = settle(base, ours, theirs, path="package.json")
    assert strategy is Strategy.VERSION_BUMP
    assert '"send": "0.16.0"' in text and "0.15.3" not in text


def test_version_bump_keeps_the_other_sides_edits_on_other_lines() -> None:
    base = "pytest==7.1.0\nrequests==2.0.0\n"
    ours = "pytest==7.2.0\nrequests==2.0.0\n"
    theirs = "pytest==7.1.3\nrequests==2.1.0\n"
    strategy, text = settle(base, ours, theirs, path="requirements/dev.txt")
    assert strategy is Strategy.VERSION_BUMP
    assert text == "pytest==7.2.0\nrequests==2.1.0\n"


def test_pinned_action_hash_follows_the_higher_version_comment() -> None:
    base = "    - uses: org/act@" + "a" * 40 + " # v1.2.0\n"
    ours = "    - uses: org/act@" + "b" * 40 + " # v1.3.0\n"
    theirs = "    - uses: org/act@" + "c" * 40 + " # v1.2.5\n"
    strategy, text = settle(base, ours, theirs, path=".github/workflows/ci.yml")
    assert strategy is Strategy.VERSION_BUMP
    assert text == ours


def test_version_bump_refuses_when_the_line_changed_otherwise() -> None:
    base = '    "connect": "2.12.0",\n'
    ours = '    "parseurl": "1.0.1",\n'
    theirs = '    "connect": "2.14.1",\n'
    strategy, _ = settle(base, ours, theirs, path="package.json")
    assert strategy is Strategy.CONFLICT


def test_plain_decimal_numbers_are_not_versions() -> None:
    strategy, _ = settle("delay = 0.5\n", "delay = 0.25\n", "delay = 0.75\n", path="app/x.py")
    assert strategy is Strategy.CONFLICT


def test_integers_are_not_versions() -> None:
    strategy, _ = settle("timeout: 100\n", "timeout: 300\n", "timeout: 200\n", path="ci.yml")
    assert strategy is Strategy.CONFLICT


# --- sorted_block --------------------------------------------------------------------------

AUTHORS = "Alice\nBob\nCarol\nDave\nErin\nFrank\n"


def test_entries_added_to_a_sorted_list_are_merged_in_order() -> None:
    ours = AUTHORS.replace("Carol\n", "Carol\nCharlie\n")
    theirs = AUTHORS.replace("Carol\n", "Carol\nChris\n")
    strategy, text = settle(AUTHORS, ours, theirs, path="AUTHORS")
    assert strategy is Strategy.SORTED_BLOCK
    assert text == AUTHORS.replace("Carol\n", "Carol\nCharlie\nChris\n")


def test_sorted_block_refuses_appends_at_the_end() -> None:
    ours = AUTHORS + "Gina\n"
    theirs = AUTHORS + "Gus\n"
    strategy, _ = settle(AUTHORS, ours, theirs, path="AUTHORS")
    assert strategy is Strategy.CONFLICT


def test_sorted_block_refuses_a_list_that_is_not_sorted() -> None:
    base = "Erin\nBob\nAlice\nDave\nCarol\nFrank\n"
    ours = base.replace("Dave\n", "Dave\nXena\n")
    theirs = base.replace("Dave\n", "Dave\nYann\n")
    strategy, _ = settle(base, ours, theirs, path="AUTHORS")
    assert strategy is Strategy.CONFLICT


def test_sorted_block_refuses_two_versions_of_one_entry() -> None:
    base = '  "a": "1",\n  "b": "1",\n  "c": "1",\n  "d": "1",\n  "e": "1",\n'
    ours = base.replace('"c": "1"', '"c": "2"')
    theirs = base.replace('"c": "1"', '"c": "3"')
    strategy, _ = settle(base, ours, theirs, path="x.txt")
    assert strategy is Strategy.CONFLICT


# --- subsumed ------------------------------------------------------------------------------


def test_side_that_already_contains_the_other_change_is_kept() -> None:
    base = "x = compute(a)\n"
    ours = "x = compute(a, b)\n"
    theirs = "x = compute(a, b)  # cached\n"
    strategy, text = settle(base, ours, theirs, path="m.py")
    assert strategy is Strategy.SUBSUMED
    assert text == theirs


def test_subsumed_refuses_insertions_at_one_place() -> None:
    strategy, _ = settle("a\nz\n", "a\nx\nz\n", "a\nx\ny\nz\n")
    assert strategy is Strategy.CONFLICT


def test_subsumed_refuses_unrelated_edits() -> None:
    strategy, _ = settle("run(a)\n", "run(b)\n", "walk(a)\n", path="m.py")
    assert strategy is Strategy.CONFLICT
