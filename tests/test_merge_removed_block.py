"""removed_block: one side removed a block the other only touched up."""

from __future__ import annotations

import pytest

from bot.merge import Strategy, engine, merge_texts
from bot.merge.policy import EVERYTHING


@pytest.fixture(autouse=True)
def _every_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the strategy proves, apart from the shipped policy (test_merge_policy.py)."""
    monkeypatch.setattr(engine, "_POLICY", [EVERYTHING])


HEAD = "import os\n\n\ndef keep():\n    return 1\n\n\n"
RETIRED = (
    "def old_helper(path):\n"
    "    \"\"\"Read the legacy configuration file and return its settings.\"\"\"\n"
    "    with open(path) as handle:\n"
    "        settings = parse_legacy(handle.read())\n"
    "    return settings\n"
    "\n\n"
)
TAIL = "def main():\n    return keep()\n"


def merged(base: str, ours: str, theirs: str, path: str = "tool.py") -> tuple[Strategy, str]:
    result = merge_texts(base, ours, theirs, path)
    assert len(result.regions) == 1, result.text
    return result.regions[0].strategy, result.text


def test_a_removal_stands_against_a_small_fix_inside_the_removed_block() -> None:
    base = HEAD + RETIRED + TAIL
    removed = HEAD + TAIL
    fixed = HEAD + RETIRED.replace("open(path)", "open(path, encoding=\"utf-8\")") + TAIL
    strategy, text = merged(base, removed, fixed)
    assert strategy is Strategy.REMOVED_BLOCK
    assert text == removed
    # The same from the other side.
    strategy, text = merged(base, fixed, removed)
    assert strategy is Strategy.REMOVED_BLOCK
    assert text == removed
    region = merge_texts(base, fixed, removed, "tool.py").regions[0]
    assert "Theirs removed these" in region.explanation


def test_removed_block_declines_when_the_other_side_added_lines() -> None:
    base = HEAD + RETIRED + TAIL
    grown = HEAD + RETIRED.replace(
        "    return settings\n", "    settings.setdefault('mode', 'strict')\n    return settings\n"
    ) + TAIL
    strategy, _ = merged(base, HEAD + TAIL, grown)
    assert strategy is Strategy.CONFLICT


def test_removed_block_declines_when_the_edit_is_a_large_part_of_the_block() -> None:
    base = HEAD + RETIRED + TAIL
    rewritten = HEAD + (
        "def old_helper(path):\n"
        "    \"\"\"Read the new configuration format and return its settings.\"\"\"\n"
        "    with open(path, 'rb') as stream:\n"
        "        settings = tomllib.load(stream)\n"
        "    return dict(settings)\n"
        "\n\n"
    ) + TAIL
    strategy, _ = merged(base, HEAD + TAIL, rewritten)
    assert strategy is Strategy.CONFLICT


def test_removed_block_declines_when_the_block_moved_rather_than_went() -> None:
    base = HEAD + RETIRED + TAIL
    # Ours moved the helper into a class (re-indented) below main; theirs fixed it in place.
    moved = HEAD + TAIL + "\n\nclass Legacy:\n" + "".join(
        "    " + line if line.strip() else line for line in RETIRED.splitlines(keepends=True)
    )
    fixed = HEAD + RETIRED.replace("open(path)", "open(path, encoding=\"utf-8\")") + TAIL
    result = merge_texts(base, moved, fixed, "tool.py")
    assert all(r.strategy is not Strategy.REMOVED_BLOCK for r in result.regions)
    assert not result.clean


def test_removed_block_declines_a_one_line_block() -> None:
    # Changing 'jade' to 'ejs' is the whole of what the line says.
    base = "var a = 1;\nexports.engine = 'jade';\nvar b = 2;\n"
    strategy, _ = merged(base, "var a = 1;\nvar b = 2;\n",
                         "var a = 1;\nexports.engine = 'ejs';\nvar b = 2;\n", path="index.js")
    assert strategy is Strategy.CONFLICT
