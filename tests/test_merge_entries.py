"""keyed_entries and release_sections on small hand-written conflicts, settled and refused."""

from __future__ import annotations

import pytest

from bot.merge import Strategy, engine, merge_texts
from bot.merge.policy import EVERYTHING


@pytest.fixture(autouse=True)
def _every_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests are about what each strategy proves, so every strategy may fire in every
    kind of file (the shipped policy enables fewer: see test_merge_policy.py)."""
    monkeypatch.setattr(engine, "_POLICY", [EVERYTHING])



def settle(base: str, ours: str, theirs: str, path: str) -> tuple[Strategy, str]:
    result = merge_texts(base, ours, theirs, path)
    assert len(result.regions) == 1, result.text
    return result.regions[0].strategy, result.text


def package(deps: str) -> str:
    return '{\n  "name": "app",\n  "dependencies": {\n' + deps + '  },\n  "license": "MIT"\n}\n'


# --- keyed_entries -------------------------------------------------------------------------

BASE_DEPS = (
    '    "accepts": "~1.2.5",\n'
    '    "basic-auth": "1.0.0",\n'
    '    "connect": "2.29.1",\n'
    '    "debug": "~2.2.0",\n'
)


def test_a_removal_beats_a_version_bump_of_the_same_entry() -> None:
    ours = BASE_DEPS.replace('    "basic-auth": "1.0.0",\n    "connect": "2.29.1",\n', "")
    theirs = BASE_DEPS.replace('"connect": "2.29.1"', '"connect": "2.29.2"')
    strategy, text = settle(package(BASE_DEPS), package(ours), package(theirs), "package.json")
    assert strategy is Strategy.KEYED_ENTRIES
    assert text == package(ours)


def test_entries_each_side_changed_differently_are_all_kept_in_order() -> None:
    ours = BASE_DEPS.replace('    "connect": "2.29.1",\n', "").replace(
        '"accepts": "~1.2.5"', '"accepts": "~1.2.7"'
    )
    theirs = BASE_DEPS.replace('"connect": "2.29.1"', '"connect": "2.29.2"').replace(
        '"debug": "~2.2.0",\n', '"debug": "~2.2.0",\n    "depd": "~1.0.1",\n'
    )
    strategy, text = settle(package(BASE_DEPS), package(ours), package(theirs), "package.json")
    assert strategy is Strategy.KEYED_ENTRIES
    assert text == package(
        '    "accepts": "~1.2.7",\n'
        '    "basic-auth": "1.0.0",\n'
        '    "debug": "~2.2.0",\n'
        '    "depd": "~1.0.1",\n'
    )


def test_the_last_json_entry_before_a_closing_brace_gets_no_comma() -> None:
    base = '    "a": "1.0.0",\n    "b": "1.0.0"\n'
    ours = '    "a": "1.0.0",\n    "b": "1.0.0",\n    "c": "1.0.0"\n'
    theirs = '    "a": "1.1.0",\n    "b": "1.0.0"\n'
    wrap = '{\n  "dependencies": {\n%s  }\n}\n'
    strategy, text = settle(wrap % base, wrap % ours, wrap % theirs, "package.json")
    assert strategy is Strategy.KEYED_ENTRIES
    assert text == wrap % '    "a": "1.1.0",\n    "b": "1.0.0",\n    "c": "1.0.0"\n'


def test_both_bumps_of_one_entry_keep_the_higher_among_other_edits() -> None:
    base = "attrs==21.1.0\nclick==8.0.0\ncolorama==0.4.4\n"
    ours = "attrs==21.4.0\ncolorama==0.4.4\n"
    theirs = "attrs==21.2.0\nclick==8.1.0\ncolorama==0.4.4\nidna==3.4\n"
    strategy, text = settle(base, ours, theirs, "requirements-dev.txt")
    assert strategy is Strategy.KEYED_ENTRIES
    assert text == "attrs==21.4.0\ncolorama==0.4.4\nidna==3.4\n"


def test_keyed_entries_refuses_an_entry_changed_otherwise_on_both_sides() -> None:
    base = "[tool]\nname = 'a'\nmode = 'x'\nlevel = 1\n"
    ours = "[tool]\nname = 'b'\nmode = 'y'\nlevel = 1\n"
    theirs = "[tool]\nname = 'c'\nmode = 'x'\nlevel = 2\n"
    strategy, _ = settle(base, ours, theirs, "pyproject.toml")
    assert strategy is Strategy.CONFLICT


def test_keyed_entries_refuses_two_sets_of_pins() -> None:
    base = '    "a": "1.0.0",\n    "b": "1.0.0",\n    "c": "1.0.0",\n'
    ours = '    "a": "1.1.0",\n    "b": "1.0.0",\n    "c": "1.0.0",\n'
    theirs = '    "a": "1.0.0",\n    "b": "1.2.0",\n    "c": "github:me/c",\n'
    strategy, _ = settle(package(base), package(ours), package(theirs), "package.json")
    assert strategy is Strategy.CONFLICT


def test_keyed_entries_refuses_a_removal_against_a_real_change() -> None:
    ours = BASE_DEPS.replace('    "connect": "2.29.1",\n', "").replace("~1.2.5", "~1.2.6")
    theirs = BASE_DEPS.replace('"connect": "2.29.1"', '"connect": "github:me/connect"')
    strategy, _ = settle(package(BASE_DEPS), package(ours), package(theirs), "package.json")
    assert strategy is Strategy.CONFLICT


def test_keyed_entries_refuses_a_side_that_moved_entries() -> None:
    base = "a: 1\nb: 2\nc: 3\n"
    ours = "a: 1\nc: 3\nb: 2\nd: 4\n"
    theirs = "a: 1\nb: 5\nc: 3\n"
    strategy, _ = settle(base, ours, theirs, "config.yml")
    assert strategy is Strategy.CONFLICT


def test_keyed_entries_refuses_a_key_moved_in_from_elsewhere_in_the_file() -> None:
    base = "[a]\nx = 1\ny = 2\n\n[b]\nz = 3\n"
    ours = "[a]\nx = 1\nz = 3\n\n[b]\nw = 4\n"
    theirs = "[a]\nx = 5\ny = 2\n\n[b]\nz = 3\n"
    result = merge_texts(base, ours, theirs, "setup.cfg")
    assert Strategy.KEYED_ENTRIES not in result.strategies


def test_keyed_entries_refuses_two_new_entries_at_one_place() -> None:
    base = "a: 1\nb: 2\n"
    ours = "a: 3\nx: 1\nb: 2\n"
    theirs = "a: 1\ny: 1\nb: 4\n"
    strategy, _ = settle(base, ours, theirs, "config.yml")
    assert strategy is Strategy.CONFLICT


def test_keyed_entries_refuses_a_lowered_version() -> None:
    base = "attrs==21.1.0\nclick==8.0.0\n"
    ours = "attrs==21.0.0\n"
    theirs = "attrs==21.1.0\nclick==8.1.0\n"
    strategy, _ = settle(base, ours, theirs, "requirements.txt")
    assert strategy is Strategy.CONFLICT


def test_keyed_entries_only_in_data_files() -> None:
    base = "a = 1\nb = 2\nc = 3\n"
    strategy, _ = settle(base, "a = 5\nb = 2\n", "a = 1\nb = 2\nc = 4\nd = 1\n", "m.py")
    assert strategy is Strategy.CONFLICT


def test_keyed_entries_refuses_lines_that_are_not_all_entries() -> None:
    base = "a: 1\n# note\nb: 2\n"
    ours = "a: 3\n# note\n"
    theirs = "a: 1\n# note\nb: 2\nc: 3\n"
    strategy, _ = settle(base, ours, theirs, "config.yml")
    assert strategy is Strategy.CONFLICT


# --- release_sections ----------------------------------------------------------------------

CHANGES = (
    "Changes\n=======\n\n"
    "Version 2.0.0\n-------------\n\nReleased 2024-01-01\n\n-   Big.\n\n\n"
    "Version 1.1.0\n-------------\n\nReleased 2023-06-01\n\n-   Medium.\n\n\n"
    "Version 1.0.0\n-------------\n\nReleased 2023-01-01\n\n-   First.\n"
)
TOP = "Changes\n=======\n\n"


def section(version: str, note: str) -> str:
    return f"Version {version}\n-------------\n\nUnreleased\n\n-   {note}\n\n\n"


def test_release_sections_of_both_sides_are_kept_newest_first() -> None:
    ours = CHANGES.replace(TOP, TOP + section("2.1.0", "Feature."))
    theirs = CHANGES.replace(TOP, TOP + section("2.0.1", "Fix."))
    strategy, text = settle(CHANGES, ours, theirs, "CHANGES.rst")
    assert strategy is Strategy.RELEASE_SECTIONS
    assert text == CHANGES.replace(
        TOP, TOP + section("2.1.0", "Feature.") + section("2.0.1", "Fix.")
    )
    # The same with the sides swapped: the order comes from the versions, not the sides.
    _, swapped = settle(CHANGES, theirs, ours, "CHANGES.rst")
    assert swapped == text


def test_markdown_release_headings_are_ordered_too() -> None:
    base = "# Changelog\n\n## 1.2.0\n\n- b\n\n## 1.1.0\n\n- a\n\n## 1.0.0\n\n- x\n"
    top = "# Changelog\n\n"
    ours = base.replace(top, top + "## 1.3.0\n\n- c\n\n")
    theirs = base.replace(top, top + "## 1.2.1\n\n- d\n\n")
    strategy, text = settle(base, ours, theirs, "CHANGELOG.md")
    assert strategy is Strategy.RELEASE_SECTIONS
    assert text == base.replace(top, top + "## 1.3.0\n\n- c\n\n## 1.2.1\n\n- d\n\n")


def test_release_sections_refuse_one_release_written_twice() -> None:
    ours = CHANGES.replace(TOP, TOP + section("2.1.0.dev", "Feature."))
    theirs = CHANGES.replace(TOP, TOP + section("2.1.0", "Fix."))
    strategy, _ = settle(CHANGES, ours, theirs, "CHANGES.rst")
    assert strategy is Strategy.CONFLICT


def test_release_sections_refuse_a_heading_without_a_version() -> None:
    ours = CHANGES.replace(TOP, TOP + "Unreleased\n----------\n\n-   Feature.\n\n\n")
    theirs = CHANGES.replace(TOP, TOP + section("2.0.1", "Fix."))
    strategy, _ = settle(CHANGES, ours, theirs, "CHANGES.rst")
    assert strategy is Strategy.CONFLICT


def test_release_sections_refuse_different_spacing() -> None:
    ours = CHANGES.replace(TOP, TOP + section("2.1.0", "Feature.").removesuffix("\n"))
    theirs = CHANGES.replace(TOP, TOP + section("2.0.1", "Fix."))
    strategy, _ = settle(CHANGES, ours, theirs, "CHANGES.rst")
    assert strategy is Strategy.CONFLICT


def test_release_sections_refuse_a_changelog_kept_oldest_first() -> None:
    base = "## 1.0.0\n\n- x\n\n## 1.1.0\n\n- a\n\n## 1.2.0\n\n- b\n\n## 9.9.9\n\n- y\n"
    anchor = "## 9.9.9\n"
    ours = base.replace(anchor, "## 1.3.0\n\n- c\n\n" + anchor)
    theirs = base.replace(anchor, "## 1.2.1\n\n- d\n\n" + anchor)
    strategy, _ = settle(base, ours, theirs, "CHANGELOG.md")
    assert strategy is Strategy.CONFLICT


def test_release_sections_refuse_plain_text_insertions() -> None:
    ours = CHANGES.replace(TOP, TOP + "Some text about 2.1.0.\n\n")
    theirs = CHANGES.replace(TOP, TOP + section("2.0.1", "Fix."))
    strategy, _ = settle(CHANGES, ours, theirs, "CHANGES.rst")
    assert strategy is Strategy.CONFLICT


def test_release_sections_refuse_a_changelog_out_of_order_further_down() -> None:
    # Newest first at the top, but a later release line is interleaved below: the order
    # of this file is kept by hand, so the order of two new sections is not proven.
    base = CHANGES + "\n\nVersion 1.2.0\n-------------\n\nBackport.\n"
    ours = base.replace(TOP, TOP + section("2.1.0", "Feature."))
    theirs = base.replace(TOP, TOP + section("2.0.1", "Fix."))
    strategy, _ = settle(base, ours, theirs, "CHANGES.rst")
    assert strategy is Strategy.CONFLICT
