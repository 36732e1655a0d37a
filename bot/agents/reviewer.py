"""The reviewer: rule-based checks of the resolved result, so that nothing unsafe is ever offered
for approval (LLM proposals get exactly the same checks as the deterministic resolver's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.agents.secrets import find_secrets
from bot.merge.checks import has_conflict_markers, lost_added_lines, parses
from bot.repo.analysis import Sides
from bot.schemas.resolve import FileStatus, ResolveResult
from bot.schemas.review import Check, Finding, ReviewResult, Severity, Verdict
from bot.schemas.triage import FileKind
from bot.scoring.paths import classify

ALL_CHECKS = [Check.UNRESOLVED, Check.CONFLICT_MARKERS, Check.SYNTAX, Check.LOST_LINES,
              Check.SECRETS, Check.SIZE]


@dataclass(frozen=True)
class ReviewLimits:
    max_patch_bytes: int = 5 * 1024 * 1024
    max_patch_files: int = 500
    # Files git merged without a conflict whose syntax is checked too (those with a parser).
    max_clean_files: int = 500


@dataclass(frozen=True)
class CleanFile:
    """A file git merged without a conflict that the patch changes, and its versions."""

    path: str
    head: bytes | None  # None: not in that version
    other: bytes | None
    merged: bytes | None


@dataclass(frozen=True)
class ReviewedFile:
    """A conflicted file as the patch leaves it, with the three versions it was merged from."""

    path: str
    status: FileStatus
    explanation: str
    sides: Sides | None  # None for files that could not be merged as text
    merged: bytes | None  # the file in the patched tree (None: deleted there)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _check_resolved(file: ReviewedFile) -> list[Finding]:
    """Markers, syntax and lost lines of a file gwi resolved (deterministically or by LLM)."""
    if file.merged is None or file.sides is None:
        return []
    text = _decode(file.merged)
    base, head, other = (_decode(s) for s in (file.sides.base, file.sides.head,
                                              file.sides.other))
    path = file.path
    findings = []
    if has_conflict_markers(text) and not (has_conflict_markers(head) or
                                           has_conflict_markers(other)):
        findings.append(Finding(check=Check.CONFLICT_MARKERS, severity=Severity.BLOCKER,
                                path=path, message="conflict markers are left in the file"))
    ok = parses(path, text)
    if ok is None:
        findings.append(Finding(check=Check.SYNTAX, severity=Severity.INFO, path=path,
                                message="no parser for this kind of file: syntax not checked"))
    elif not ok and parses(path, head) and parses(path, other):
        findings.append(Finding(check=Check.SYNTAX, severity=Severity.BLOCKER, path=path,
                                message="the result does not parse, though both sides did"))
    lost = lost_added_lines(base, head, other, text)
    if lost:
        sample = ", ".join(repr(line.strip()[:60]) for line in lost[:3])
        findings.append(Finding(
            check=Check.LOST_LINES, severity=Severity.BLOCKER, path=path,
            message=f"{len(lost)} line(s) a side added are missing: {sample}"))
    return findings


def _check_clean(file: CleanFile) -> list[Finding]:
    """Two branches that each parse can still merge, without a conflict, into a file that
    does not (a comma both sides needed, a block split by the other's lines)."""
    if file.merged is None or parses(file.path, _decode(file.merged)) is not False:
        return []
    sides = [_decode(side) for side in (file.head, file.other) if side is not None]
    if not all(parses(file.path, side) for side in sides):
        return []  # it did not parse before the merge either: not the merge's doing
    return [Finding(check=Check.SYNTAX, severity=Severity.BLOCKER, path=file.path,
                    message="git merged this file without a conflict, but the result does not"
                    " parse, though both branches did")]


def _added_lines(patch: bytes) -> list[tuple[str, int, str]]:
    """(path, line number in the new file, text) of every line the patch adds."""
    out: list[tuple[str, int, str]] = []
    path = ""
    line_no = 0
    for raw in patch.split(b"\n"):
        line = _decode(raw)
        if line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else ""
        elif line.startswith("@@"):
            try:
                line_no = int(line.split("+", 1)[1].split(" ", 1)[0].split(",")[0])
            except (IndexError, ValueError):
                line_no = 0
        elif line.startswith("+") and path:
            out.append((path, line_no, line[1:]))
            line_no += 1
        elif line.startswith(" "):
            line_no += 1
    return out


def _check_secrets(patch: bytes, files: dict[str, ReviewedFile]) -> list[Finding]:
    """A secret the resolution *introduced* (in neither side) blocks; one that only comes in
    from the base branch is a warning: gwi did not add it, but the maintainer should know."""
    findings = []
    for path, line_no, text in _added_lines(patch):
        kinds = find_secrets(text)
        env_file = classify(path) is FileKind.SECRETS
        if not kinds and not env_file:
            continue
        reviewed = files.get(path)
        sides = reviewed.sides if reviewed else None
        introduced = sides is not None and not any(
            text in _decode(side).splitlines() for side in (sides.head, sides.other)
        )
        what = ", ".join(kinds) if kinds else "content of a secrets file"
        if introduced:
            findings.append(Finding(check=Check.SECRETS, severity=Severity.BLOCKER, path=path,
                                    line=max(1, line_no),
                                    message=f"the resolution introduces a {what}"))
        else:
            findings.append(Finding(check=Check.SECRETS, severity=Severity.WARNING, path=path,
                                    line=max(1, line_no),
                                    message=f"a {what} comes in from the base branch"))
    return findings[:50]


def review(
    run_id: str,
    patch: bytes,
    resolved: ResolveResult,
    files: Sequence[ReviewedFile],
    limits: ReviewLimits | None = None,
    clean: Sequence[CleanFile] = (),
    clean_unchecked: int = 0,
) -> ReviewResult:
    """Review exactly the bytes that would be approved: ``patch``, as applied to the head.

    ``files`` are the conflicted files; ``clean`` the files git merged without a conflict
    that have a parser (``clean_unchecked`` more were over the limit and not parsed)."""
    limits = limits or ReviewLimits()
    findings: list[Finding] = []
    for file in files:
        if file.status is FileStatus.UNRESOLVED:
            findings.append(Finding(check=Check.UNRESOLVED, severity=Severity.BLOCKER,
                                    path=file.path, message=file.explanation[:3900]))
        else:
            findings += _check_resolved(file)
    for clean_file in clean:
        findings += _check_clean(clean_file)
    if clean_unchecked:
        findings.append(Finding(check=Check.SYNTAX, severity=Severity.INFO,
                                message=f"{clean_unchecked} more file(s) git merged without a"
                                " conflict were not syntax-checked (over the limit)"))
    findings += _check_secrets(patch, {f.path: f for f in files})
    size = len(patch)
    if size > limits.max_patch_bytes:
        findings.append(Finding(check=Check.SIZE, severity=Severity.BLOCKER,
                                message=f"the patch is {size} bytes, over the"
                                f" {limits.max_patch_bytes}-byte limit"))
    touched = resolved.files_total
    if touched > limits.max_patch_files:
        findings.append(Finding(check=Check.SIZE, severity=Severity.WARNING,
                                message=f"the patch touches {touched} files"))
    return _result(run_id, resolved.patch_sha256, findings)


def _result(run_id: str, patch_sha256: str, findings: Sequence[Finding]) -> ReviewResult:
    blockers = sum(f.severity is Severity.BLOCKER for f in findings)
    return ReviewResult(
        run_id=run_id,
        patch_sha256=patch_sha256,
        checks=list(ALL_CHECKS),
        findings=list(findings),
        blockers=blockers,
        warnings=sum(f.severity is Severity.WARNING for f in findings),
        verdict=Verdict.BLOCKED if blockers else Verdict.APPROVABLE,
    )
