"""Properties of every merge: a clean result keeps what both sides kept and has no markers."""

from __future__ import annotations

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
@given(versions(), st.sampled_from(["x.txt", "package.json", "m.py", "AUTHORS"]))
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
