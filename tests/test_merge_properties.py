"""Properties of every merge: a clean result keeps what both sides kept and has no markers."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.merge import merge_texts
from bot.merge.checks import has_conflict_markers, lost_added_lines
from bot.merge.diff import diff
from bot.merge.lines import split_lines
from bot.merge.tokens import ids

# Lines that give the strategies something to work on: versions, sorted names, code.
VOCAB = [
    '    "send": "0.15.1",\n',
    '    "send": "0.16.0",\n',
    '    "vary": "1.0.0",\n',
    "Alice\n",
    "Bob\n",
    "Carol\n",
    "Dave\n",
    "x = f(a)\n",
    "x = f(a, b)\n",
    "return x\n",
    "\n",
    "}\n",
    "pytest==7.1.0\n",
    "pytest==7.2.0\n",
    '    "vary": "2.0.0"\n',
    "Version 2.0\n",
    "Version 1.9\n",
    "-----------\n",
    "-   Fixed.\n",
]
LINES = st.lists(st.sampled_from(VOCAB), max_size=10)


@st.composite
def versions(draw: st.DrawFn) -> tuple[str, str, str]:
    base = draw(LINES)

    def edit(lines: list[str]) -> list[str]:
        out = list(lines)
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(out)))
            cut = draw(st.integers(0, 2))
            out[at : at + cut] = draw(st.lists(st.sampled_from(VOCAB), max_size=3))
        return out

    return "".join(base), "".join(edit(base)), "".join(edit(base))


def kept_by_both(base: str, ours: str, theirs: str) -> list[str]:
    b, o, t = split_lines(base), split_lines(ours), split_lines(theirs)
    touched = bytearray(len(b) + 1)
    for side in (o, t):
        bi, si = ids(b, side)
        for start, end, _, _ in diff(bi, si):
            touched[start:end] = b"\x01" * (end - start)
    return [line for i, line in enumerate(b) if not touched[i]]


def is_subsequence(needle: list[str], hay: list[str]) -> bool:
    it = iter(hay)
    return all(any(x == y for y in it) for x in needle)


@settings(max_examples=250, deadline=None)
@given(
    versions(),
    st.sampled_from(
        ["x.txt", "package.json", "m.py", "AUTHORS", "CHANGES.rst", "requirements.txt"]
    ),
)
def test_clean_merges_keep_shared_lines_and_have_no_markers(
    versions: tuple[str, str, str], path: str
) -> None:
    base, ours, theirs = versions
    result = merge_texts(base, ours, theirs, path)
    unresolved = sum(not r.resolved for r in result.regions)
    assert result.text.count("<<<<<<< ours") == unresolved
    assert result.clean == (unresolved == 0)
    if result.clean:
        assert not has_conflict_markers(result.text)
        assert is_subsequence(kept_by_both(base, ours, theirs), split_lines(result.text))
        assert lost_added_lines(base, ours, theirs, result.text) == []


@st.composite
def dependency_edits(draw: st.DrawFn) -> tuple[dict[str, str], list[str], list[str]]:
    """A base map of pins and two sides' key lists after removals, additions and bumps."""
    keys = [f"k{i}" for i in range(draw(st.integers(2, 7)))]
    base = dict.fromkeys(keys, "1.0.0")
    sides: list[list[str]] = []
    for prefix in ("o", "t"):
        entries = [f'"{k}": "1.0.0"' for k in keys]
        for _ in range(draw(st.integers(1, 3))):
            op = draw(st.sampled_from(["remove", "add", "bump"]))
            if op == "add":
                at = draw(st.integers(0, len(entries)))
                entries.insert(at, f'"{prefix}{len(entries)}{at}": "0.1.0"')
            elif entries:
                at = draw(st.integers(0, len(entries) - 1))
                if op == "remove":
                    del entries[at]
                else:
                    minor = draw(st.integers(1, 9))
                    entries[at] = entries[at].replace('"1.0.0"', f'"1.{minor}.0"')
        sides.append(entries)
    return base, sides[0], sides[1]


def package_json(entries: list[str]) -> str:
    body = ",\n".join(f"    {e}" for e in entries)
    return '{\n  "name": "x",\n  "dependencies": {\n' + body + '\n  },\n  "license": "MIT"\n}\n'


@settings(max_examples=300, deadline=None)
@given(dependency_edits())
def test_keyed_entries_keeps_every_edit_and_valid_json(
    edits: tuple[dict[str, str], list[str], list[str]],
) -> None:
    base, ours, theirs = edits
    base_entries = [f'"{k}": "{v}"' for k, v in base.items()]
    result = merge_texts(
        package_json(base_entries), package_json(ours), package_json(theirs), "package.json"
    )
    if not result.clean:
        return
    merged = json.loads(result.text)["dependencies"]
    sides = [json.loads("{" + ",".join(s) + "}") for s in (ours, theirs)]
    for key in set(base) | set(sides[0]) | set(sides[1]):
        values = [side.get(key) for side in sides]
        if key in base and None in values:
            assert key not in merged, key  # a removal holds (and beats a bump)
        elif key not in base:
            assert merged[key] == next(v for v in values if v is not None), key
        else:
            assert merged[key] == max(values, key=lambda v: tuple(map(int, v.split(".")))), key
