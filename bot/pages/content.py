"""What the run page shows, gathered from the run's folder: its artifacts, each conflicted file's
regions beside what gwi decided, the patch, the approval and the push, and the audit log checked
right now. Read-only: nothing here writes to a run."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError

from bot.errors import GwiError
from bot.pages.patch_view import PatchView, patch_view
from bot.pages.verification import AnchorCheck, Verification, check_anchor, verify_now
from bot.runs.audit import ChainError, parse_chain
from bot.runs.bundle import RunDamaged, RunNotFound
from bot.runs.ids import AUDIT_LOG
from bot.runs.signing import verify_signature
from bot.runs.store import RunStore
from bot.schemas.approval import ApprovalRecord
from bot.schemas.audit import AuditAction, AuditEvent
from bot.schemas.base import Schema
from bot.schemas.plan import PlanResult
from bot.schemas.resolve import FileResolution, FileStatus, ResolveResult
from bot.schemas.review import Finding, ReviewResult
from bot.schemas.run import RunContext
from bot.schemas.triage import TriageResult

S = TypeVar("S", bound=Schema)
#: An audit event's data longer than this (as JSON) is shown folded, whole, under its start.
DATA_PREVIEW = 300


@dataclass(frozen=True)
class EventRow:
    event: AuditEvent
    data: str  # the event's data as JSON
    preview: str  # its start, when it is longer than DATA_PREVIEW (else empty)


@dataclass(frozen=True)
class ConflictedFile:
    """A file git left in conflict: gwi's answer, and what the review found in it."""

    resolution: FileResolution
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class Push:
    """What the audit log records of the approved patch reaching the branch."""

    commit: str | None
    parents: tuple[str, ...]
    ref: str | None
    remote: str | None
    lease: str | None  # the commit the branch had to be at for the update (compare-and-swap)
    after: str | None
    refusals: tuple[tuple[str, str], ...]  # (code, reason) of each refused apply
    result: str


@dataclass(frozen=True)
class ApprovalView:
    record: ApprovalRecord
    signature_valid: bool
    key_trusted: bool
    matches_patch: bool  # the approved hash is the sha256 of patch.diff as it is now


@dataclass(frozen=True)
class PageContent:
    ctx: RunContext
    damaged: tuple[str, ...]  # artifacts that could not be read, with why
    triage: TriageResult | None
    plan: PlanResult | None
    resolve: ResolveResult | None
    conflicted: tuple[ConflictedFile, ...]
    merged_cleanly: tuple[str, ...]
    review: ReviewResult | None
    patch: PatchView | None
    approval: ApprovalView | None
    push: Push | None
    events: tuple[EventRow, ...]
    chain_error: str | None
    verification: Verification
    anchor: AnchorCheck

    @property
    def pr_url(self) -> str | None:
        pr = self.ctx.pull_request
        return pr.url if pr is not None else None


def _model(store: RunStore, run_id: str, name: str, model: type[S],
           damaged: list[str]) -> S | None:
    try:
        return store.read_model(run_id, name, model)
    except RunDamaged as exc:
        damaged.append(str(exc))
        return None


def _events(raw: bytes, run_id: str) -> tuple[tuple[AuditEvent, ...], str | None]:
    """The log's events and, when it is not an intact chain, why; a broken chain still shows
    every line that parses, so a person sees what is there."""
    try:
        return parse_chain(raw, run_id).events, None
    except ChainError as exc:
        error = str(exc)
    events = []
    for line in raw.split(b"\n"):
        try:
            events.append(AuditEvent.model_validate_json(line))
        except ValidationError:
            continue
    return tuple(events), error


def _row(event: AuditEvent) -> EventRow:
    data = json.dumps(event.data, sort_keys=True, ensure_ascii=False)
    return EventRow(event, data, data[:DATA_PREVIEW] if len(data) > DATA_PREVIEW else "")


def _push(events: tuple[AuditEvent, ...], ctx: RunContext) -> Push | None:
    def last(action: AuditAction) -> AuditEvent | None:
        return next((e for e in reversed(events) if e.action is action), None)

    started, made, moved = (last(a) for a in (AuditAction.APPLY_STARTED,
                                              AuditAction.COMMIT_CREATED,
                                              AuditAction.REF_UPDATED))
    refusals = tuple((str(e.data.get("code", "")), str(e.data.get("reason", "")))
                     for e in events if e.action is AuditAction.APPLY_REFUSED)
    if started is None and made is None and moved is None and not refusals:
        return None
    if moved is not None:
        result = f"pushed: {moved.data.get('ref')} moved to {moved.data.get('after')}"
    elif ctx.outcome is not None:
        result = f"not pushed: the run ended {ctx.outcome.value}: {ctx.history[-1].reason}"
    elif ctx.error is not None:
        result = f"not pushed: {ctx.error}"
    else:
        result = f"not pushed yet (the run is {ctx.state.value})"
    commit = made.data.get("commit") if made is not None else None
    parents = made.data.get("parents") if made is not None else None
    return Push(
        commit=str(commit) if commit is not None else None,
        parents=tuple(str(p) for p in parents) if isinstance(parents, list) else (),
        ref=str(moved.data.get("ref")) if moved is not None else None,
        remote=str(moved.data["remote"]) if moved is not None and "remote" in moved.data
        else None,
        lease=str(moved.data.get("before")) if moved is not None else None,
        after=str(moved.data.get("after")) if moved is not None else None,
        refusals=refusals,
        result=result,
    )


def _approval(record: ApprovalRecord | None, patch: PatchView | None,
              trusted_keys: frozenset[str]) -> ApprovalView | None:
    if record is None:
        return None
    sig = record.signature
    return ApprovalView(
        record=record,
        signature_valid=verify_signature(sig.public_key, sig.value, record.signed_bytes()),
        key_trusted=sig.public_key in trusted_keys,
        matches_patch=patch is not None and patch.sha256 == f"sha256:{record.patch_sha256}",
    )


def _conflicted(resolve: ResolveResult | None,
                review: ReviewResult | None) -> tuple[tuple[ConflictedFile, ...], tuple[str, ...]]:
    if resolve is None:
        return (), ()
    findings = review.findings if review is not None else []
    conflicted = tuple(
        ConflictedFile(f, tuple(x for x in findings if x.path == f.path))
        for f in resolve.files if f.status is not FileStatus.MERGED_CLEANLY
    )
    clean = tuple(f.path for f in resolve.files if f.status is FileStatus.MERGED_CLEANLY)
    return conflicted, clean


def gather(store: RunStore, run_id: str, *, trusted_keys: frozenset[str],
           anchor: tuple[int, str] | None = None) -> PageContent:
    """Everything the page shows of one run; raises `RunNotFound` for an unknown run."""
    try:
        known = store.exists(run_id)
    except GwiError:  # not a run id at all (a path, a typo): no such run
        known = False
    if not known:
        raise RunNotFound(f"no run {run_id!r}")
    ctx = store.read_context(run_id)
    damaged: list[str] = []
    triage = _model(store, run_id, "triage.json", TriageResult, damaged)
    plan = _model(store, run_id, "plan.json", PlanResult, damaged)
    resolve = _model(store, run_id, "resolve.json", ResolveResult, damaged)
    review = _model(store, run_id, "review.json", ReviewResult, damaged)
    approval = _model(store, run_id, "approval.json", ApprovalRecord, damaged)
    raw_patch = store.read_bytes(run_id, "patch.diff")
    patch = patch_view(raw_patch) if raw_patch is not None else None
    events, chain_error = _events(store.read_bytes(run_id, AUDIT_LOG) or b"", run_id)
    conflicted, clean = _conflicted(resolve, review)
    with store.materialise(run_id) as folder:
        verification = verify_now(folder, trusted_keys, anchor)
    return PageContent(
        ctx=ctx,
        damaged=tuple(damaged),
        triage=triage,
        plan=plan,
        resolve=resolve,
        conflicted=conflicted,
        merged_cleanly=clean,
        review=review,
        patch=patch,
        approval=_approval(approval, patch, trusted_keys),
        push=_push(events, ctx),
        events=tuple(_row(e) for e in events),
        chain_error=chain_error,
        verification=verification,
        anchor=check_anchor(events, anchor),
    )
