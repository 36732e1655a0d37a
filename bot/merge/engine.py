"""merge_texts / merge_bytes: the line-level three-way merge and the settling of its conflicts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from itertools import chain, count

from bot.merge.checks import has_conflict_markers, language, lost_lines
from bot.merge.diff3 import Chunk, merge_chunks
from bot.merge.generated import regenerate_with
from bot.merge.lines import (
    conflict_block,
    conversion_note,
    eol_style,
    has_marker_line,
    marker_eol,
    split_lines,
)
from bot.merge.model import Conflict, MergeResult, Region, Resolution, Strategy, StrategyFn
from bot.merge.policy import Policy, kind, shipped
from bot.merge.whole_file import check_whole_file

DEFAULT_LABELS = ("ours", "base", "theirs")
DEFAULT_MAX_BYTES = 1 << 20
UNRESOLVED = "Both sides changed these lines differently; left for a person."
SURFACED = (
    "Only the older release line changed this version, so git merges it in without a"
    " conflict; a region of this file was settled for the newer line, so whether this"
    " change belongs in the merge is left for a person."
)


def _strategies() -> tuple[StrategyFn, ...]:
    from bot.merge.strategies import STRATEGIES

    return STRATEGIES


_POLICY: list[Policy] = []


def _default_policy() -> Policy:
    if not _POLICY:
        _POLICY.append(shipped())
    return _POLICY[0]


def _passes(conflict: Conflict, resolution: Resolution) -> bool:
    """The region checks.

    A resolution may not contain a conflict marker, may not drop a line that a side added
    where the other side did not touch, and only its very last line may lack a line end,
    and only at the end of the file.
    """
    at_end = conflict.chunk.ours_end == len(conflict.ours_file)
    lines = resolution.lines
    if any(not line.endswith("\n") for line in lines[:-1]) or (
        lines and not lines[-1].endswith("\n") and not at_end
    ):
        return False
    if has_marker_line("".join(lines)):
        return False
    return not lost_lines(conflict.base, conflict.ours, conflict.theirs, lines)


def _settle(
    conflict: Conflict, strategies: Sequence[StrategyFn], policy: Policy, file_kind: str
) -> Resolution | None:
    """The first allowed strategy's resolution that passes the region checks, if any."""
    for strategy in strategies:
        resolution = strategy(conflict)
        if resolution is None or not policy.allows(resolution.strategy.value, file_kind):
            continue
        if _passes(conflict, resolution):
            return resolution
    return None


def probe(base: str, ours: str, theirs: str, path: str) -> list[dict[str, list[str]]]:
    """For each conflict region of git's merge, what every strategy would answer alone.

    Each answer has passed the region checks (not the whole-file ones); the benchmark uses
    this to measure each strategy apart from the order in which they are tried.
    """
    b, o, t = split_lines(base), split_lines(ours), split_lines(theirs)
    lang = language(path)
    index = dict(zip(dict.fromkeys(chain(b, o, t)), count())).__getitem__
    out: list[dict[str, list[str]]] = []
    chunks = merge_chunks(list(map(index, b)), list(map(index, o)), list(map(index, t)))
    for chunk in chunks:
        if not chunk.conflict:
            continue
        conflict = Conflict(
            path=path, language=lang,
            base=b[chunk.base_start : chunk.base_end],
            ours=o[chunk.ours_start : chunk.ours_end],
            theirs=t[chunk.theirs_start : chunk.theirs_end],
            chunk=chunk, base_file=b, ours_file=o, theirs_file=t, file_chunks=chunks,
        )
        answers: dict[str, list[str]] = {}
        for strategy in _strategies():
            resolution = strategy(conflict)
            if resolution is not None and _passes(conflict, resolution):
                answers.setdefault(resolution.strategy.value, resolution.lines)
        out.append(answers)
    return out


def merge_texts(
    base: str,
    ours: str,
    theirs: str,
    path: str,
    *,
    labels: tuple[str, str, str] = DEFAULT_LABELS,
    resolve: bool = True,
    policy: Policy | None = None,
    attributes_generated: bool = False,
    diff_algorithm: str = "myers",
) -> MergeResult:
    """Merge three versions of the file at repo-relative ``path``.

    The line-level merge is git's (same regions as ``git merge-file --diff3``); each
    conflict region is then offered to the strategies the ``policy`` allows for this kind
    of file, and a resolution is kept only when it passes the checks. Unsettled regions
    stay as diff3 conflict markers. With ``resolve=False`` no strategy runs: the result is
    git's own merge. A settled region may name spans git merged cleanly that a person must
    see (``Resolution.surface``: the older release line's other bumps); those become
    regions too, left as conflicts. ``diff_algorithm`` "myers" gives `git merge-file`'s regions,
    "histogram" those of `git merge` / `git merge-tree`. A lock, checksum or generated file (``attributes_generated``: marked so
    in `.gitattributes`) is never resolved: its regions say which tool regenerates it.
    """
    b, o, t = split_lines(base), split_lines(ours), split_lines(theirs)
    lang = language(path)
    regenerate = regenerate_with(path, (base, ours, theirs),
                                 attributes_generated=attributes_generated)
    strategies = _strategies() if resolve and regenerate is None else ()
    policy = policy or _default_policy()
    file_kind = kind(path)
    # Lines become small ints once (equal lines, equal ints): every diff compares ints.
    index = dict(zip(dict.fromkeys(chain(b, o, t)), count())).__getitem__
    chunks = merge_chunks(
        list(map(index, b)), list(map(index, o)), list(map(index, t)), diff_algorithm
    )

    def region(chunk: Chunk) -> Conflict:
        return Conflict(
            path=path,
            language=lang,
            base=b[chunk.base_start : chunk.base_end],
            ours=o[chunk.ours_start : chunk.ours_end],
            theirs=t[chunk.theirs_start : chunk.theirs_end],
            chunk=chunk,
            base_file=b,
            ours_file=o,
            theirs_file=t,
            file_chunks=chunks,
        )

    # The regions: git's conflicts, settled where a strategy may; later also the clean spans
    # an answer says a person must see (``Resolution.surface``).
    shown = [n for n, chunk in enumerate(chunks) if chunk.conflict]
    conflicts = [region(chunks[n]) for n in shown]
    answers: list[Resolution | None] = [
        _settle(conflict, strategies, policy, file_kind) if strategies else None
        for conflict in conflicts
    ]
    pieces = _pieces(chunks, shown, b, o, t)
    undone: dict[int, str] = {}  # region -> why a check turned its resolution back
    if any(answers) and lang is not None:
        check_whole_file(path, ours, theirs, pieces, conflicts, answers, undone)
    surfaced = {n for answer in answers if answer is not None for n in answer.surface}
    if surfaced:
        settled = dict(zip(shown, answers, strict=True))
        kept = dict(zip(shown, conflicts, strict=True))
        why = {shown[i]: reason for i, reason in undone.items()}
        shown = sorted({*shown, *surfaced})
        conflicts = [kept.get(n) or region(chunks[n]) for n in shown]
        answers = [settled.get(n) for n in shown]
        undone = {i: why.get(n) or SURFACED for i, n in enumerate(shown)
                  if n in why or n in surfaced}
        pieces = _pieces(chunks, shown, b, o, t)

    def render(which: Sequence[Resolution | None]) -> str:
        out: list[str] = []
        for piece in pieces:
            if isinstance(piece, int):
                answer = which[piece]
                if answer is not None:
                    out.extend(answer.lines)
                else:
                    c = conflicts[piece]
                    eol = marker_eol(b, o, t, c.chunk.ours_start, c.chunk.theirs_start)
                    out.extend(conflict_block(c.ours, c.base, c.theirs, labels, eol))
            else:
                out.extend(piece)
        return "".join(out)

    text = render(answers)
    clean = all(answers)
    if (
        clean
        and has_conflict_markers(text)
        and not (has_conflict_markers(ours) or has_conflict_markers(theirs))
    ):
        clean = False
    if regenerate is not None and resolve:
        for i in range(len(conflicts)):
            undone[i] = f"{regenerate[0].upper()}{regenerate[1:]}; not merged as text."
    regions = tuple(
        _region(i, c, a, undone.get(i), policy.confidence_of(a.strategy.value) if a else 0)
        for i, (c, a) in enumerate(zip(conflicts, answers, strict=True))
    )
    refused = regenerate if regenerate is not None and resolve and conflicts else None
    return MergeResult(text=text, clean=clean, regions=regions, refused=refused,
                       generated=refused is not None)


def _pieces(
    chunks: Sequence[Chunk], shown: Sequence[int], b: list[str], o: list[str], t: list[str]
) -> list[list[str] | int]:
    """The output's pieces: agreed lines, or the index in ``shown`` of a span shown as a region."""
    pieces: list[list[str] | int] = []
    regions = {n: i for i, n in enumerate(shown)}
    ours_at = 0
    for n, chunk in enumerate(chunks):
        pieces.append(o[ours_at : chunk.ours_start])
        ours_at = chunk.ours_end
        if n in regions:
            pieces.append(regions[n])
        elif chunk.take_theirs:
            pieces.append(t[chunk.theirs_start : chunk.theirs_end])
        else:
            pieces.append(o[chunk.ours_start : chunk.ours_end])
    pieces.append(o[ours_at:])
    return pieces


def _region(index: int, conflict: Conflict, answer: Resolution | None,
            undone: str | None = None, confidence: int = 0) -> Region:
    """The region's outcome; ``undone`` says why a check turned its resolution back."""
    c = conflict.chunk
    return Region(
        index=index,
        base_start=c.base_start,
        base_end=c.base_end,
        ours_start=c.ours_start,
        ours_end=c.ours_end,
        theirs_start=c.theirs_start,
        theirs_end=c.theirs_end,
        resolved=answer is not None,
        strategy=answer.strategy if answer is not None else Strategy.CONFLICT,
        explanation=answer.explanation if answer is not None else (undone or UNRESOLVED),
        lines=len(conflict.base) + len(conflict.ours) + len(conflict.theirs),
        confidence=confidence,
        base_text="".join(conflict.base),
        ours_text="".join(conflict.ours),
        theirs_text="".join(conflict.theirs),
        resolution="".join(answer.lines) if answer is not None else None,
        surfaced=not c.conflict,
    )


def _refuse(
    base: bytes, ours: bytes, theirs: bytes, labels: tuple[str, str, str], reason: str
) -> MergeResult:
    """The whole file as one conflict, untried, with the reason."""
    parts = [x.decode("utf-8", "surrogateescape") for x in (ours, base, theirs)]
    block = conflict_block(
        split_lines(parts[0]), split_lines(parts[1]), split_lines(parts[2]), labels, "\n"
    )
    return MergeResult(text="".join(block), clean=False, regions=(), refused=reason)


_BOM = b"\xef\xbb\xbf"


def _pick(base: object, ours: object, theirs: object) -> object:
    """Three-way choice of a whole-file property: a side that changed it wins, ours first."""
    return theirs if ours == base else ours


def merge_bytes(
    base: bytes,
    ours: bytes,
    theirs: bytes,
    path: str,
    *,
    labels: tuple[str, str, str] = DEFAULT_LABELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    resolve: bool = True,
    policy: Policy | None = None,
    attributes_generated: bool = False,
    diff_algorithm: str = "myers",
) -> MergeResult:
    """Merge file contents as stored: refuse what is not text, then :func:`merge_texts`.

    Binary files (a NUL byte), files over ``max_bytes`` and files that are not UTF-8 are
    left whole as a conflict with the reason in ``refused``. When one side added or removed
    a UTF-8 byte-order mark, the texts are merged without it and the result takes the
    change; when both sides converted every line ending the same way, likewise. When one
    side alone converted them (LF to CRLF or back), the result is git's merge, unsettled,
    each region's explanation saying why.
    """
    datas: tuple[bytes, ...] = (base, ours, theirs)
    if any(b"\0" in x for x in datas):
        return _refuse(base, ours, theirs, labels, "binary file (contains NUL bytes)")
    if max(len(x) for x in datas) > max_bytes:
        return _refuse(base, ours, theirs, labels, f"file larger than {max_bytes} bytes")
    boms = [x.startswith(_BOM) for x in datas]
    add_bom = False
    if len(set(boms)) > 1:
        datas = tuple(x.removeprefix(_BOM) for x in datas)
        add_bom = bool(_pick(*boms))
    styles = [eol_style(x) for x in datas] if any(b"\r" in x for x in datas) else []
    known = {s for s in styles if s is not None}
    converted = len(known) > 1 and all(s is not None for s in styles)
    to_crlf = False
    if converted and styles[1] == styles[2]:
        # Both sides made the same conversion: merge the lines apart from it, keep it.
        datas = tuple(x.replace(b"\r\n", b"\n") for x in datas)
        to_crlf, converted = styles[1] == "crlf", False
    try:
        texts = [x.decode("utf-8") for x in datas]
    except UnicodeDecodeError:
        return _refuse(base, ours, theirs, labels, "not UTF-8 text")
    result = merge_texts(texts[0], texts[1], texts[2], path, labels=labels,
                         resolve=resolve and not converted, policy=policy,
                         attributes_generated=attributes_generated,
                         diff_algorithm=diff_algorithm)
    if converted and result.regions and result.refused is None:
        # Git conflicts on every line, and so does gwi (docs/merge.md: merging apart from
        # the conversion was right for 9 of 19 such files on the shared set).
        why = conversion_note(styles)
        result = MergeResult(text=result.text, clean=False,
                             regions=tuple(replace(r, explanation=why) for r in result.regions))
    if not (add_bom or to_crlf):
        return result
    text = result.text.replace("\n", "\r\n") if to_crlf else result.text
    if add_bom:
        text = "\ufeff" + text
    return MergeResult(text=text, clean=result.clean, regions=result.regions,
                       refused=result.refused, generated=result.generated)
