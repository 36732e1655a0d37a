"""Both sides bumped the same version number: the higher version wins."""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.merge.diff3 import Chunk
from bot.merge.model import Conflict, Resolution, Strategy
from bot.merge.tokens import TokenMerge, merge_tokens, tokenize

# 1.2, 1.2.3, v1.2.3, 2.0.0-beta.1, 1.0rc2, 3.0.2.dev0: dotted numbers, maybe a pre/post tag;
# and the qualifiers of Maven and Gradle versions: 4.1.0-M1, 4.1.0-RC1, 4.0.4-SNAPSHOT,
# 5.3.2.RELEASE, 6.2.0.Final, 1.0.0.GA.
_QUALIFIERS = "alpha|beta|rc|a|b|c|dev|pre|post|m|milestone|snapshot|release|final|ga"
_VERSION = re.compile(
    rf"v?\d+(?:\.\d+)+(?:[-.]?(?:{_QUALIFIERS})\.?\d*)*", re.IGNORECASE
)
_VERSION_SEARCH = re.compile(r"\d+(?:\.\d+)+")
# A whole version in running text, qualifier included (4.0.3-SNAPSHOT is not 4.0.3).
_FULL_VERSION = re.compile(
    rf"(?<![\d.])v?\d+(?:\.\d+)+(?:[-.]?(?:{_QUALIFIERS})\.?\d*)*(?![\d.])", re.IGNORECASE
)
# Where a qualifier puts a version among those with the same numbers, as pip (PEP 440) and
# Maven order them: a dev build, alphas, betas, milestones, release candidates, a Maven
# snapshot (the build before its release), the release (RELEASE, Final, GA and no qualifier
# all name it), a post-release.
_RANKS = (
    ("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("milestone", 3), ("m", 3),
    ("rc", 4), ("c", 4), ("pre", 4), ("snapshot", 5), ("release", 6), ("final", 6),
    ("ga", 6), ("post", 7),
)
_QUALIFIER = re.compile("|".join(name for name, _ in _RANKS), re.IGNORECASE)
_HEX = re.compile(r"[0-9a-f]{7,64}")
_MAX_LINES = 200
_UNDERLINE = re.compile(r"([=\-~^*+#`'\"])\1{2,}")

Key = tuple[tuple[int, ...], int, tuple[int, ...]]


def _split(line: str) -> list[str]:
    return tokenize([line])


def version_key(text: str) -> Key:
    """An order on version strings: numbers first, then the qualifier (:data:`_RANKS`: the
    pre-releases before the release, a post-release after it), then the qualifier's number."""
    text = text.lstrip("vV")
    match = re.match(r"\d+(?:\.\d+)*", text)
    if match is None:
        raise ValueError(text)
    numbers = [int(x) for x in match.group().split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    rest = text[match.end() :]
    qualifier = _QUALIFIER.search(rest)
    rank = dict(_RANKS)[qualifier.group().lower()] if qualifier else 6
    return tuple(numbers), rank, tuple(int(x) for x in re.findall(r"\d+", rest))


_IPV4 = re.compile(r"\d+\.\d+\.\d+\.\d+")
_MANIFEST = re.compile(
    r"(package\.json|requirements[^/]*\.(txt|in)|\.toml|setup\.(py|cfg)|\.ya?ml|\.cfg|\.ini"
    r"|constraints[^/]*\.txt|__init__\.py|version[^/]*)$",
    re.IGNORECASE,
)
_PIN_BEFORE = ("~", "^", "=", ">", "<", "@")


def _is_version(token: str) -> bool:
    return _VERSION.fullmatch(token) is not None and _IPV4.fullmatch(token) is None


def _versionish(tokens: list[str], index: int, path: str) -> bool:
    """Whether ``tokens[index]`` (one line's tokens) is a version, not a decimal such as 0.5.

    Numbers with two or more dots are versions. A number with a single dot is one only in a
    dependency manifest or CI file, on a line that says "version", or right after a pin
    operator (``~1.2``, ``==1.2``, ``@1.2``, ``v1.2``).
    """
    token = tokens[index]
    if not _is_version(token):
        return False
    digits = token.lstrip("vV")
    if digits.count(".") >= 2 or token[0] in "vV" or not digits.split(".")[-1].isdigit():
        return True
    line = "".join(tokens).lower()
    if "version" in line or _MANIFEST.search(path):
        return True
    return index > 0 and tokens[index - 1][-1:] in _PIN_BEFORE


def _shape(tokens: list[str], path: str) -> tuple[str, ...]:
    """A line's tokens with versions and hashes blanked out."""
    return tuple(
        "<v>" if _versionish(tokens, i, path) else "<h>" if _HEX.fullmatch(t) else t
        for i, t in enumerate(tokens)
    )


def _merge_line(base: str, ours: str, theirs: str, path: str) -> tuple[str, str] | None:
    """The merged line and which side's versions won, or None when it is not only versions.

    The three lines must be equal once versions and hashes are blanked out. Where only one
    side changed a token, that side's token is taken; where both changed a version, the
    side with the higher versions wins every token both changed (its pinned hash too).
    """
    b, o, t = (_split(x) for x in (base, ours, theirs))
    if not (len(b) == len(o) == len(t)):
        return None
    shape = _shape(b, path)
    if _shape(o, path) != shape or _shape(t, path) != shape:
        return None
    ours_ahead = theirs_ahead = both_changed = False
    for i, kind in enumerate(shape):
        if kind == "<v>" and o[i] != b[i] and t[i] != b[i] and o[i] != t[i]:
            both_changed = True
            ko, kt = version_key(o[i]), version_key(t[i])
            ours_ahead |= ko > kt
            theirs_ahead |= kt > ko
    winner = ""
    if both_changed:
        if ours_ahead == theirs_ahead:
            return None  # same version spelled twice, or each side ahead somewhere
        winner = "ours" if ours_ahead else "theirs"
    out: list[str] = []
    for i in range(len(b)):
        if o[i] == t[i] or t[i] == b[i]:
            out.append(o[i])
        elif o[i] == b[i]:
            out.append(t[i])
        elif winner:
            out.append(o[i] if winner == "ours" else t[i])
        else:
            return None  # both changed a hash with no version to say which is newer
    return "".join(out), winner


def _new_versions(base: Sequence[str], side: Sequence[str]) -> set[str]:
    """Version-looking strings a side's region has that the base's has not (a quick filter)."""
    return set(_FULL_VERSION.findall("".join(side))) - set(_FULL_VERSION.findall("".join(base)))


def resolve(c: Conflict) -> Resolution | None:
    """Take the higher of two version numbers both sides wrote in place of the same one.

    A merge never means to go back to an older release of a dependency, action or the
    project itself; when both branches bumped the same pin, the newer bump includes the
    older one. Each place where the sides' token edits collide must lie on one line whose
    three versions differ only in version numbers (and commit hashes pinned next to
    them); edits only one side made elsewhere in the region are kept as a merge keeps them.

    Where the sides are on two release lines (a maintenance branch merged forward), the
    newer line must win every collision, and the older line's other version changes in the
    file, which git merges without a conflict, are named in ``Resolution.surface`` for the
    engine to show as conflicts of their own.
    """
    if not c.base or not c.ours or not c.theirs or len(c.base) > _MAX_LINES:
        return None
    if not _new_versions(c.base, c.ours) or not _new_versions(c.base, c.theirs):
        return None
    if _versions_moved(c.base, c.ours) or _versions_moved(c.base, c.theirs):
        return None  # a list of versions shifted or re-sorted: not a bump in place
    merge = merge_tokens(c.base, c.ours, c.theirs)
    pick: dict[int, list[str]] = {}
    winners: set[str] = set()
    trains: set[str] = set()  # the side on the older release line, where two meet
    for n, chunk in enumerate(merge.chunks):
        if not chunk.conflict:
            if _downgrade(merge, chunk):
                return None  # a side lowered a version: versions are not only moving forward
            continue
        spans = [
            _whole_line(tokens, start, end)
            for tokens, start, end in (
                (merge.base, chunk.base_start, chunk.base_end),
                (merge.ours, chunk.ours_start, chunk.ours_end),
                (merge.theirs, chunk.theirs_start, chunk.theirs_end),
            )
        ]
        if any(span is None for span in spans):
            return None
        (b0, b1), (o0, o1), (t0, t1) = (span for span in spans if span is not None)
        merged = _merge_line(
            "".join(merge.base[b0:b1]),
            "".join(merge.ours[o0:o1]),
            "".join(merge.theirs[t0:t1]),
            c.path,
        )
        if merged is None or not merged[1]:
            return None
        if (
            _other_release_line(
                "".join(merge.base[b0:b1]), "".join(merge.ours[o0:o1]),
                "".join(merge.theirs[t0:t1]),
            )
            or _across_release_lines("".join(merge.ours[o0:o1]), "".join(merge.theirs[t0:t1]))
        ):
            trains.add("theirs" if merged[1] == "ours" else "ours")
        winners.add(merged[1])
        side, start, end = (
            (merge.ours, chunk.ours_start, chunk.ours_end)
            if merged[1] == "ours"
            else (merge.theirs, chunk.theirs_start, chunk.theirs_end)
        )
        pick[n] = side[start:end]
    if not winners and not _bumps_on_both_sides(merge, c.path):
        return None
    if _other_release_lines(c.ours_file, c.theirs_file):
        if len(winners) != 1:
            return None  # each release line keeps its own pins, unless one line wins outright
        trains.add("theirs" if "ours" in winners else "ours")
    if len(trains) > 1:
        return None  # each side is ahead on some release line
    result = merge.render(pick)
    if any(
        _UNDERLINE.fullmatch(line.strip()) for line in [*c.ours, *c.theirs] if line not in c.base
    ):
        return None  # a heading underline changed: its length follows the title's
    sides = " and ".join(sorted(winners))
    older = next(iter(trains), None)
    surface = _clean_version_spans(c, older) if older else ()
    explanation = (
        f"Both sides bumped the same version; kept the higher one ({sides})."
        if winners
        else "Each side bumped different versions here; kept every bump."
    )
    if surface and older:
        explanation += (
            f" {older.capitalize()} is on an older release line and changed versions"
            " elsewhere too; those changes are shown as conflicts for a person."
        )
    return Resolution(lines=result, strategy=Strategy.VERSION_BUMP, explanation=explanation,
                      surface=surface)


# A line that sets the project's own version (`version = 1.2`, `"version": "1.2"`,
# `__version__ = "1.2"`; `<version>` is left out: in a pom every dependency has one).
# Each branch of a project carries its release line's version (main at 5.0.0-beta, a
# maintenance branch at 4.20.0): when the two sides are on different release lines the
# higher one is not the newer of one line, and maintainers keep the branch's own.
_OWN_VERSION = re.compile(
    r"""^\s*(?:export\s+)?["']?(?:__version__|version|VERSION|Version|projectVersion)["']?\s*[:=]"""
)
_RELEASE_LINE = re.compile(r"(\d+)\.(\d+)")


def _other_release_line(base: str, ours: str, theirs: str) -> bool:
    """Whether the line sets the project's own version and the sides differ in major.minor."""
    if not _OWN_VERSION.match(base):
        return False
    o, t = _RELEASE_LINE.search(ours), _RELEASE_LINE.search(theirs)
    return o is None or t is None or o.groups() != t.groups()


def _own_version(lines: Sequence[str]) -> str | None:
    """The text of the file's first line that sets the project's own version, if any.

    A line at a time, with a cheap test first: files run to thousands of lines, and every
    region of one asks.
    """
    for line in lines:
        if ("ersion" in line or "VERSION" in line) and _OWN_VERSION.match(line):
            return line.rstrip("\r\n")
    return None


def _other_release_lines(ours: Sequence[str], theirs: Sequence[str]) -> bool:
    """Whether the file names the project's version and the sides are on two release lines.

    A branch of another release line (a maintenance branch at 4.0.x merged into main at
    4.1.0) carries its own dependency set: each line bumps what it supports, and the
    higher pin of the two is not what either line meant (gradle.properties, package.json).
    """
    o, t = _own_version(ours), _own_version(theirs)
    if o is None or t is None:
        return False
    o_line, t_line = _RELEASE_LINE.search(o), _RELEASE_LINE.search(t)
    return o_line is not None and t_line is not None and o_line.groups() != t_line.groups()


def _bumps_on_both_sides(merge: TokenMerge, path: str) -> bool:
    """Whether each side raised some versions and nothing else changed in the region."""
    raised = set()
    for chunk in merge.chunks:
        side, start, end = (
            (merge.theirs, chunk.theirs_start, chunk.theirs_end)
            if chunk.take_theirs
            else (merge.ours, chunk.ours_start, chunk.ours_end)
        )
        if chunk.conflict or end - start != 1 or chunk.base_end - chunk.base_start != 1:
            return False
        if not (_versionish(merge.base, chunk.base_start, path) and _versionish(side, start, path)):
            return False
        if _OWN_VERSION.match(_line_of(merge.base, chunk.base_start)):
            return False  # the project's own version is each branch's own
        raised.add("theirs" if chunk.take_theirs else "ours")
    return raised == {"ours", "theirs"}


def _line_of(tokens: list[str], index: int) -> str:
    """The text of the line that holds tokens[index]."""
    first = index
    while first > 0 and "\n" not in tokens[first - 1]:
        first -= 1
    last = index
    while last < len(tokens) and "\n" not in tokens[last]:
        last += 1
    return "".join(tokens[first : last + 1])


def _downgrade(merge: TokenMerge, chunk: Chunk) -> bool:
    """Whether a change only one side made replaces a version by a lower one."""
    side, start, end = (
        (merge.theirs, chunk.theirs_start, chunk.theirs_end)
        if chunk.take_theirs
        else (merge.ours, chunk.ours_start, chunk.ours_end)
    )
    if end - start != 1 or chunk.base_end - chunk.base_start != 1:
        return False
    old, new = merge.base[chunk.base_start], side[start]
    return _is_version(old) and _is_version(new) and version_key(new) < version_key(old)


def _whole_line(tokens: list[str], start: int, end: int) -> tuple[int, int] | None:
    """The token span of the one line holding tokens[start:end], or None if it spans lines."""
    if start == end or any("\n" in t for t in tokens[start:end]):
        return None
    first = start
    while first > 0 and "\n" not in tokens[first - 1]:
        first -= 1
    last = end
    while last < len(tokens) and "\n" not in tokens[last]:
        last += 1
    return first, min(last + 1, len(tokens))


def _versions_moved(base: Sequence[str], side: Sequence[str]) -> bool:
    """Whether a line the side wrote holds a version some base line of the region had.

    A bump writes a new version where the old one was; an old version on a new line means
    the versions moved: a CI matrix that gained a Ruby at the top shifts every other one
    down a line (`&ruby2 2.3.1` where `&ruby1 2.3.1` was), and pairing the lines would
    "bump" each entry to its neighbour's version.
    """
    old = {v for line in base for v in _FULL_VERSION.findall(line)}
    kept = set(base)
    return any(
        v in old for line in side if line not in kept for v in _FULL_VERSION.findall(line)
    )


def _across_release_lines(ours: str, theirs: str) -> bool:
    """Whether the two sides' versions on a line differ in major.minor (4.1.0-M1, 4.0.4)."""
    return any(
        o.split(".")[:2] != t.split(".")[:2]
        for o, t in zip(_VERSION_SEARCH.findall(ours), _VERSION_SEARCH.findall(theirs),
                        strict=False)
    )


def _clean_version_spans(c: Conflict, side: str) -> tuple[int, ...]:
    """The file's spans (indexes into ``c.file_chunks``) where ``side`` alone changed a line
    holding a version: the spans git merges in without a conflict.

    When the region's versions are on two release lines (a maintenance branch merged
    forward), the region keeps the newer line; the older line's other bumps would then land
    silently beside it, mixing two dependency sets (spring-boot's maintainers kept main's
    released versions over the branch's snapshots). The engine shows those spans to a
    person as conflicts of their own.
    """
    spans = []
    for n, chunk in enumerate(c.file_chunks):
        if chunk.conflict or chunk.take_theirs != (side == "theirs"):
            continue
        lines = (c.theirs_file[chunk.theirs_start : chunk.theirs_end] if chunk.take_theirs
                 else c.ours_file[chunk.ours_start : chunk.ours_end])
        if any(_VERSION_SEARCH.search(line) for line in lines):
            spans.append(n)
    return tuple(spans)
