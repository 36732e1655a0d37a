"""Accepting an approval: the `/gwi approve` checks that turn a comment into a signed
`approval.json` and a queued push, and the record of every refusal.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from bot import logs
from bot.engine.approval import (
    ApprovalRefused,
    approval_fields,
    check_approvable,
    sign_approval,
)
from bot.github.approval_checks import (
    allowed,
    comment_holds,
    head_and_base_hold,
    is_author,
    is_requester,
)
from bot.github.client import RepoClient
from bot.github.jobs import APPLY_JOB, ApplyRequest, ApproveRequest, RunRequest, enqueue_run, pr_key
from bot.github.publish import publish
from bot.github.repo_config import (
    RepoConfig,
)
from bot.github.service import GitHubService
from bot.queue.records import IndexedRun, UnitOfWork
from bot.runs.bundle import RunDamaged
from bot.runs.handle import RunHandle
from bot.schemas.approval import ApprovalRecord, ApproverKind
from bot.schemas.audit import AuditAction
from bot.schemas.common import format_patch_hash, sha256_hex, utcnow
from bot.schemas.run import Actor, ActorType, CapabilityMode
from bot.schemas.state import Outcome, RunState

log = logs.get_logger("gwi.gate")


async def accept_approval(gh: GitHubService, client: RepoClient, request: ApproveRequest,
                          config: RepoConfig, unit: UnitOfWork) -> str:
    """Record the approval and queue the push; returns the reply. Refusals raise
    `ApprovalRefused`; the caller replies and audits them."""
    role = await allowed(gh, client, request.sender, config)
    pr = await client.get_pull_request(request.number)
    if pr.state != "open":
        raise ApprovalRefused("the pull request is closed", code="closed")
    if pr.draft:
        raise ApprovalRefused("the pull request is a draft", code="draft")
    if not config.allow_self_approval and is_author(pr, request.sender.login,
                                                      request.sender.id):
        raise ApprovalRefused("this repository does not let authors approve their own pull"
                              " requests", code="self_approval")
    await comment_holds(client, request.comment_id,
                         sha256_hex(request.comment_body.encode()), request.sender.login)
    run = await gh.index.latest(request.repository, request.number)
    if run is None:
        raise ApprovalRefused("there is no gwi run on this pull request", code="no_run")
    ctx = gh.runs.read_context(run.run_id)
    if not config.allow_self_approval and is_requester(ctx, request.sender.login):
        raise ApprovalRefused("this repository does not let the person who asked for a run"
                              " approve it", code="self_approval")
    if ctx.capabilities is CapabilityMode.READ_ONLY:
        raise ApprovalRefused("gwi may not push to this pull request's branch: apply the"
                              " patch by hand", code="read_only")
    moved = await head_and_base_hold(client, pr, run.head_sha, run.base_sha, ctx.base.ref)
    if moved:
        refusal = ApprovalRefused(f"{moved}: a new run is starting, approve its patch",
                                  code="stale")
        if not await _restart_stale(gh, client, unit, request, run.run_id, refusal):
            raise ApprovalRefused(moved, code="stale")  # the run had ended anyway
        raise refusal

    def record() -> ApprovalRecord:
        with gh.runs.open(run.run_id) as handle:
            digest = check_approvable(handle, request.hash_text)
            existing = handle.read_model("approval.json", ApprovalRecord)
            person = Actor(type=ActorType.USER, id=request.sender.login)
            if existing is not None:
                if existing.comment is not None and existing.comment.id == request.comment_id:
                    # The same comment again (a redelivery, or a retry after a crash that
                    # came between writing the record and auditing it).
                    if not any(e.action is AuditAction.APPROVAL_RECORDED for e in handle.events):
                        handle.record(AuditAction.APPROVAL_RECORDED, {
                            "patch": format_patch_hash(digest), "approver": request.sender.login,
                            "approver_id": request.sender.id, "role": role,
                            "comment_id": request.comment_id,
                            "delivery_id": request.delivery_id}, person)
                    return existing
                raise ApprovalRefused(
                    f"already approved by @{existing.approver.login}", code="already_approved")
            ready = _awaiting_since(handle)
            written = request.comment_created_at
            if written.tzinfo is None:  # GitHub writes UTC ("...Z"); never compare naive times
                written = written.replace(tzinfo=UTC)
            if written < ready.replace(microsecond=0):
                # GitHub's times have whole seconds: compare within the second it became ready.
                raise ApprovalRefused(
                    "that comment was written before this patch was ready: approve it in a new"
                    " comment", code="too_early")
            approval = sign_approval(gh.runs.signer, {
                **approval_fields(handle, digest, {
                    "kind": ApproverKind.GITHUB_USER, "login": request.sender.login,
                    "id": request.sender.id, "role": role}, utcnow()),
                "comment": {"id": request.comment_id, "url": request.comment_url,
                            "created_at": request.comment_created_at,
                            "body_sha256": sha256_hex(request.comment_body.encode())},
                "delivery_id": request.delivery_id,
            })
            handle.write_artifact("approval.json", approval, actor=person)
            handle.record(AuditAction.APPROVAL_RECORDED, {
                "patch": format_patch_hash(digest), "approver": request.sender.login,
                "approver_id": request.sender.id, "role": role,
                "comment_id": request.comment_id, "delivery_id": request.delivery_id}, person)
            return approval

    approval = await asyncio.to_thread(record)
    gh.metrics.approvals.labels("accepted", "none").inc()
    unit.enqueue_job(APPLY_JOB, ApplyRequest(repository=request.repository,
                                             number=request.number,
                                             installation_id=request.installation_id,
                                             run_id=run.run_id).model_dump(),
                     key=pr_key(request.repository, request.number),
                     idempotency_key=f"apply:{run.run_id}")
    # The reply already starts with "@<approver>": it does not name them twice.
    return f"approved: pushing {format_patch_hash(approval.patch_sha256)}."


def _awaiting_since(handle: RunHandle) -> datetime:
    """When the run last entered awaiting_approval (when its patch became approvable)."""
    entered = [h.at for h in handle.ctx.history if h.state is RunState.AWAITING_APPROVAL]
    return entered[-1]


async def _restart_stale(gh: GitHubService, client: RepoClient, unit: UnitOfWork,
                         request: ApproveRequest, run_id: str, refusal: ApprovalRefused) -> bool:
    """The run's head or base moved: record the refusal, end the run as stale, and start one
    on what is there now (a moved base sends no pull_request event, so nothing else would).
    False when the run had already ended (nothing to restart)."""
    def end() -> bool:
        with gh.runs.open(run_id) as handle:
            if handle.finished or handle.ctx.state is RunState.APPLYING:
                return False
            person = Actor(type=ActorType.USER, id=request.sender.login)
            handle.record(AuditAction.APPROVAL_REFUSED, {
                "code": refusal.code, "reason": refusal.reason,
                "comment_id": request.comment_id}, person)
            handle.transition(RunState.ABORTED, outcome=Outcome.STALE,
                              reason=f"nothing was pushed: {refusal.reason}"[:3000], actor=person)
            return True

    if not await asyncio.to_thread(end):
        return False
    await publish(gh, client, run_id, comment=True)
    enqueue_run(unit, RunRequest(repository=request.repository, number=request.number,
                                 installation_id=request.installation_id,
                                 trigger="the pull request moved after the run"),
                dedupe=f"after-stale:{run_id}")
    return True


async def audit_line(gh: GitHubService, run: IndexedRun | None, action: AuditAction, who: str,
                     data: dict[str, Any]) -> None:
    """One line by ``who`` in the run's audit log, when there is a run still open to write to
    (a finished run is sealed and signed; the structured log line still has it)."""
    if run is None:
        return

    def write() -> None:
        with gh.runs.open(run.run_id) as handle:
            if not handle.finished:
                handle.record(action, data, Actor(type=ActorType.USER, id=who[:255] or "unknown"))

    try:
        await asyncio.to_thread(write)
    except RunDamaged as exc:
        log.error("audit.unrecorded", run_id=run.run_id, action=action.value, error=str(exc))


async def audit_refusal(gh: GitHubService, run: IndexedRun | None, action: AuditAction,
                        refusal: ApprovalRefused, who: str, extra: dict[str, Any]) -> None:
    """Write a refusal into the run's audit log (see `audit_line`), and count it."""
    gh.metrics.approvals.labels("refused", refusal.code).inc()
    await audit_line(gh, run, action, who, {"code": refusal.code, "reason": refusal.reason,
                                            **extra})
