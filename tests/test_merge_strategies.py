"""Each strategy on small hand-written conflicts: what it settles and what it must refuse."""

from __future__ import annotations

import pytest

from bot.merge import Strategy, engine, merge_texts
from bot.merge.policy import EVERYTHING
from bot.merge.strategies.versions import version_key


@pytest.fixture(autouse=True)
def _every_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about what each strategy proves, so every strategy may fire in every
    kind of file (the shipped policy enables fewer: see test_merge_policy.py)."""
    monkeypatch.setattr(engine, "_POLICY", [EVERYTHING])



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


def test_bumps_of_different_pins_on_each_side_are_all_kept() -> None:
    base = "attrs==21.1.0\nclick==8.0.0\ncolorama==0.4.4\n"
    ours = "attrs==21.2.0\nclick==8.0.0\ncolorama==0.4.4\n"
    theirs = "attrs==21.1.0\nclick==8.0.1\ncolorama==0.4.4\n"
    strategy, text = settle(base, ours, theirs, path="requirements/tests.txt")
    assert strategy is Strategy.VERSION_BUMP
    assert text == "attrs==21.2.0\nclick==8.0.1\ncolorama==0.4.4\n"


def test_version_bump_refuses_a_one_sided_downgrade() -> None:
    base = '    "accepts": "~1.3.8",\n    "body-parser": "1.19.2",\n'
    ours = '    "accepts": "~1.3.7",\n    "body-parser": "2.0.0",\n'
    theirs = '    "accepts": "~1.3.8",\n    "body-parser": "1.20.2",\n'
    strategy, _ = settle(base, ours, theirs, path="package.json")
    assert strategy is Strategy.CONFLICT


def test_version_bump_refuses_a_changed_heading_underline() -> None:
    base = "3.0.2.dev\n=========\n"
    ours = "3.1.0.dev\n=========\n"
    theirs = "3.0.3.dev0\n==========\n"
    strategy, _ = settle(base, ours, theirs, path="CHANGELOG.rst")
    assert strategy is Strategy.CONFLICT


IMPORTS = (
    "import os\n"
    "import sys\n"
    "from _pytest.config import Config\n"
    "from _pytest.nodes import Node\n"
    "from _pytest.outcomes import exit\n"
    "from _pytest.runner import collect_one_node\n"
    "\n"
    "\n"
    "def f(node: Node) -> None:\n"
    "    exit(os.sep, sys.argv, Config, collect_one_node, node)\n"
)


def test_python_imports_in_isort_order_are_merged_in_that_order() -> None:
    exit_line = "from _pytest.outcomes import exit\n"
    ours = IMPORTS.replace(exit_line, exit_line + "from _pytest.reports import CollectReport\n")
    theirs = IMPORTS.replace(exit_line, exit_line + "from _pytest.python import Function\n")
    strategy, text = settle(IMPORTS, ours, theirs, path="src/m.py")
    assert strategy is Strategy.SORTED_BLOCK
    assert (
        exit_line
        + (
            "from _pytest.python import Function\nfrom _pytest.reports import CollectReport\n"
            "from _pytest.runner import collect_one_node\n"
        )
        in text
    )


def test_an_import_one_side_dropped_but_the_merged_code_uses_stays_a_conflict() -> None:
    # Ours drops the Node import (its own code stopped using it); theirs adds a line that
    # still reads Node elsewhere, so the sorted merge would leave Node unbound.
    node_line = "from _pytest.nodes import Node\n"
    ours = IMPORTS.replace(node_line, "").replace("def f(node: Node)", "def f(node: object)")
    theirs = IMPORTS.replace(node_line, "from _pytest.main import Session\n" + node_line)
    theirs += "\n\nX = Node\n"
    result = merge_texts(IMPORTS, ours, theirs, "src/m.py")
    assert [r.strategy for r in result.regions] == [Strategy.CONFLICT]
    # Without the late use of Node, the same edits merge as a sorted block.
    theirs = IMPORTS.replace(node_line, "from _pytest.main import Session\n" + node_line)
    theirs = theirs.replace("def f(node: Node)", "def f(node: object)")
    ours = IMPORTS.replace(node_line, "").replace("def f(node: Node)", "def f(node: object)")
    strategy, text = settle(IMPORTS, ours, theirs, path="src/m.py")
    assert strategy is Strategy.SORTED_BLOCK and "Session" in text and node_line not in text


def test_sorted_block_refuses_an_entry_one_side_rewrote_and_the_other_deleted() -> None:
    base = "aa\nbb\ncc = 1\ndd\nee\nff\n"
    ours = "aa\nbb\ncc = 2\ndd\nee\nff\n"
    theirs = "aa\nbb\ndd\nee\nff\n"
    strategy, _ = settle(base, ours, theirs)
    assert strategy is Strategy.CONFLICT


def test_subsumed_refuses_sides_that_differ_only_in_layout() -> None:
    strategy, _ = settle("f(a)\n", "f(a, b)\n", "f(a,b)\n", path="m.py")
    assert strategy is Strategy.CONFLICT


# --- adjacent_entries ----------------------------------------------------------------------


def test_two_neighbouring_entries_changed_one_by_each_side_keep_both() -> None:
    base = '{\n  "name": "x",\n  "main": "a.js",\n  "license": "MIT"\n}\n'
    ours = base.replace('"name": "x"', '"name": "y"')
    theirs = base.replace('"main": "a.js"', '"main": "b.js"')
    strategy, text = settle(base, ours, theirs, path="package.json")
    assert strategy is Strategy.ADJACENT_ENTRIES
    assert '"name": "y"' in text and '"main": "b.js"' in text


@pytest.mark.parametrize("path", ["m.py", "docs/notes.txt", "CMakeLists.txt", "MANIFEST.in"])
def test_adjacent_entries_only_in_data_files(path: str) -> None:
    strategy, _ = settle("a = 1\nb = 2\n", "a = 5\nb = 2\n", "a = 1\nb = 7\n", path=path)
    assert strategy is Strategy.CONFLICT


@pytest.mark.parametrize("path", ["requirements.txt", "requirements-dev.in",
                                  "constraints.txt", "setup.cfg", "x.toml"])
def test_adjacent_entries_in_pins_and_settings(path: str) -> None:
    strategy, _ = settle("a = 1\nb = 2\n", "a = 5\nb = 2\n", "a = 1\nb = 7\n", path=path)
    assert strategy is Strategy.ADJACENT_ENTRIES


def test_adjacent_entries_refuses_a_changed_separator() -> None:
    base = '  "a": 1,\n  "b": 2\n'
    ours = '  "a": 5,\n  "b": 2\n'
    theirs = '  "a": 1,\n  "b": 2,\n'
    strategy, _ = settle(base, ours, theirs, path="x.json")
    assert strategy is Strategy.CONFLICT


def test_two_release_lines_settle_for_the_newer_and_show_the_older_lines_other_bumps() -> None:
    # A maintenance branch (4.0.x) merged into main (4.1.0) that also bumped a pin main left
    # alone: git would merge that bump in silently beside main's pins (spring-boot's
    # gradle.properties). Main's line keeps the region; the branch's bump is shown.
    base = ("version=4.0.2-SNAPSHOT\n\nassertjVersion=3.27.6\njacksonVersion=3.0.3\n"
            "mockito=5.20.0\n\n# build\nkotlin.code.style=official\nnettyVersion=4.2.1\n")
    ours = base.replace("version=4.0.2", "version=4.1.0").replace("3.0.3", "3.1.0")
    theirs = base.replace("3.0.3", "3.0.4").replace("4.2.1", "4.2.2")
    result = merge_texts(base, ours, theirs, "gradle.properties")
    assert [r.strategy for r in result.regions] == [Strategy.VERSION_BUMP, Strategy.CONFLICT]
    assert "jacksonVersion=3.1.0" in result.text and "=======\nnettyVersion=4.2.2" in result.text
    # When the older line changed nothing else, main's line wins outright.
    strategy, text = settle(base, ours, theirs.replace("4.2.2", "4.2.1"), path="gradle.properties")
    assert strategy is Strategy.VERSION_BUMP and text == ours
    # On one release line the same bumps are settled.
    same_line = ours.replace("version=4.1.0", "version=4.0.2")
    strategy, text = settle(base, same_line, theirs.replace("4.2.2", "4.2.1"),
                            path="gradle.properties")
    assert strategy is Strategy.VERSION_BUMP and "jacksonVersion=3.1.0" in text
