"""The approval gate: the only way gwi commits or pushes on GitHub.

An approval is accepted only from a `/gwi approve sha256:<hash>` comment by a person whose
*current* permission (`role_name`) meets the repository's setting, naming the exact patch of
the pull request's current run, while the PR is open, not a draft, and its head and base are
the ones the run reviewed. It becomes a signed `approval.json`. Then `push_approved`, the one
function that pushes, re-verifies all of it against GitHub at that moment, builds the merge
commit from the approved bytes, mints a token with contents write just for the push, and pushes
with a compare-and-swap on the branch (`--force-with-lease`). If the head moved, nothing is
written, the run is aborted as stale, and a new run starts for the new head.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot import git, logs
from bot.engine.approval import (
    ApprovalRefused,
    approval_fields,
    check_approvable,
    sign_approval,
    verify_approval,
)
from bot.engine.index import IndexedRun
from bot.engine.queue import Job, UnitOfWork
from bot.errors import GwiError
from bot.github.capabilities import PUSH_PERMISSIONS
from bot.github.client import RepoClient
from bot.github.errors import GitHubError, PushRejected
from bot.github.git import _push_with_lease
from bot.github.models import PullRequest
from bot.github.repo_config import RepoConfig, role_meets, role_of
from bot.github.runner import RunRequest, enqueue_run, pr_key, publish
from bot.github.service import GitHubService
from bot.runs.state import Outcome, RunState
from bot.runs.store import RunHandle
from bot.schemas.approval import ApprovalRecord, ApproverKind
from bot.schemas.audit import AuditAction
from bot.schemas.common import format_patch_hash, sha256_hex
from bot.schemas.run import Actor, ActorType

log = logs.get_logger("gwi.gate")
APPLY_JOB = "pr.apply"
WORKFLOWS_PREFIX = ".github/workflows/"


class Commenter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int
    login: str
    type: str

    @property
    def is_bot(self) -> bool:
        return self.type != "User" or self.login.endswith("[bot]")


class ApproveRequest(BaseModel):
    """Everything about the approving comment that the record binds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    delivery_id: str
    comment_id: int
    comment_url: str
    comment_body: str
    comment_created_at: datetime
    sender: Commenter
    hash_text: str


class ApplyRequest(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    repository: str
    number: int
    installation_id: int
    run_id: str


# -- accepting an approval --------------------------------------------------------------------

async def _head_and_base_hold(client: RepoClient, pr: PullRequest, run_head: str,
                              run_base: str, base_ref: str) -> str | None:
    """Why the PR no longer matches the run (head or base moved, retargeted), or None."""
    if pr.head.sha != run_head:
        return f"the pull request's head moved to {pr.head.sha[:12]} since the run"
    if pr.base.ref != base_ref:
        return f"the pull request now targets {pr.base.ref}, not {base_ref}"
    tip = await client.get_ref(f"heads/{pr.base.ref}")
    if tip is None or tip.sha != run_base:
        return f"{pr.base.ref} moved since the run"
    return None


async def _allowed(gh: GitHubService, client: RepoClient, person: Commenter,
                   config: RepoConfig) -> str:
    """The person's role if they may approve; refuses bots, the App and too weak a role.

    `author_association` in the payload is never consulted: it is not an authorisation (private
    organisation members show up as CONTRIBUTOR or NONE, and it lags behind role changes).
    """
    if person.is_bot or person.login == await gh.app.bot_login():
        raise ApprovalRefused("approvals come from people, not from apps or bots", code="bot")
    permission = await client.get_collaborator_permission(person.login)
    role = role_of(permission.role_name, permission.permission)
    if not role_meets(role, config.approver_role):
        raise ApprovalRefused(
            f"@{person.login} needs the {config.approver_role.value} role or higher to approve",
            code="permission",
        )
    return role.value if role else permission.role_name


async def accept_approval(gh: GitHubService, client: RepoClient, request: ApproveRequest,
                          config: RepoConfig, unit: UnitOfWork) -> str:
    """Record the approval and queue the push; returns the reply. Refusals raise
    `ApprovalRefused`; the caller replies and audits them."""
    role = await _allowed(gh, client, request.sender, config)
    pr = await client.get_pull_request(request.number)
    if pr.state != "open":
        raise ApprovalRefused("the pull request is closed", code="closed")
    if pr.draft:
        raise ApprovalRefused("the pull request is a draft", code="draft")
    if not config.allow_self_approval and pr.user is not None and (
        pr.user.login == request.sender.login
    ):
        raise ApprovalRefused("this repository does not let authors approve their own pull"
                              " requests", code="self_approval")
    run = await gh.index.latest(request.repository, request.number)
    if run is None:
        raise ApprovalRefused("there is no gwi run on this pull request", code="no_run")
    ctx = gh.runs.read_context(run.run_id)
    moved = await _head_and_base_hold(client, pr, run.head_sha, run.base_sha, ctx.base.ref)
    if moved:
        raise ApprovalRefused(f"{moved}: approve the new run's patch", code="stale")

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
                            "role": role, "comment_id": request.comment_id,
                            "delivery_id": request.delivery_id}, person)
                    return existing
                raise ApprovalRefused(
                    f"already approved by @{existing.approver.login}", code="already_approved")
            approval = sign_approval(gh.runs.signer, {
                **approval_fields(handle, digest, {
                    "kind": ApproverKind.GITHUB_USER, "login": request.sender.login,
                    "id": request.sender.id, "role": role}, _now()),
                "comment": {"id": request.comment_id, "url": request.comment_url,
                            "created_at": request.comment_created_at,
                            "body_sha256": sha256_hex(request.comment_body.encode())},
                "delivery_id": request.delivery_id,
            })
            handle.write_artifact("approval.json", approval, actor=person)
            handle.record(AuditAction.APPROVAL_RECORDED, {
                "patch": format_patch_hash(digest), "approver": request.sender.login,
                "role": role, "comment_id": request.comment_id,
                "delivery_id": request.delivery_id}, person)
            return approval

    approval = await asyncio.to_thread(record)
    unit.enqueue_job(APPLY_JOB, ApplyRequest(repository=request.repository,
                                             number=request.number,
                                             installation_id=request.installation_id,
                                             run_id=run.run_id).model_dump(),
                     key=pr_key(request.repository, request.number),
                     idempotency_key=f"apply:{run.run_id}")
    return (f"Approved by @{approval.approver.login}: pushing"
            f" {format_patch_hash(approval.patch_sha256)}.")


def _now() -> datetime:
    from bot.schemas.common import utcnow

    return utcnow()


async def audit_refusal(gh: GitHubService, run: IndexedRun | None, action: AuditAction,
                        refusal: ApprovalRefused, who: str, extra: dict[str, Any]) -> None:
    """Write a refusal into the run's audit log (when there is a run still open to write to)."""
    if run is None:
        return

    def write() -> None:
        with gh.runs.open(run.run_id) as handle:
            if not handle.finished:
                handle.record(action, {"code": refusal.code, "reason": refusal.reason, **extra},
                              Actor(type=ActorType.USER, id=who[:255] or "unknown"))

    await asyncio.to_thread(write)


# -- pushing ---------------------------------------------------------------------------------------

async def push_approved(job: Job, unit: UnitOfWork, *, gh: GitHubService, **_: Any) -> None:
    """The one push path: re-verify everything live, commit the approved bytes, push by CAS."""
    request = ApplyRequest.model_validate(job.payload)
    with logs.bind(repository=request.repository, pr=request.number, run_id=request.run_id):
        client = gh.work_client(request.installation_id, request.repository)
        ctx = gh.runs.read_context(request.run_id)
        if ctx.state not in (RunState.AWAITING_APPROVAL, RunState.APPLYING):
            log.info("apply.skipped", state=ctx.state.value)
            return
        try:
            record = await asyncio.to_thread(_verified, gh, request.run_id)
            pr = await client.get_pull_request(request.number)
            await _still_holds(gh, client, pr, record, ctx.head.sha, ctx.base.sha,
                               ctx.base.ref, ctx.state is RunState.APPLYING)
        except ApprovalRefused as refusal:
            await _refuse_apply(gh, client, request, refusal, unit)
            return
        branch = pr.head.ref
        push_url = (pr.head.repo.clone_url if pr.head.repo and pr.head.repo.clone_url
                    else None) or (await client.get_repo()).clone_url
        commit = await asyncio.to_thread(_commit_once, gh, request.run_id, record,
                                         await gh.app.bot_login())
        permissions = dict(PUSH_PERMISSIONS)
        if _touches_workflows(gh, request.run_id):
            permissions["workflows"] = "write"
        try:
            token = await gh.app.repo(request.installation_id, request.repository,
                                      permissions).token()
        except GitHubError as exc:
            why = ("the patch changes .github/workflows/, which needs the App's workflows"
                   " permission: apply it by hand, or grant the permission and run again"
                   if "workflows" in permissions else f"no token to push with: {exc.reason}")
            await _end(gh, client, request.run_id, Outcome.CANCELLED, why)
            return
        try:
            await _push_with_lease(gh.cache, request.repository, push_url or "", commit=commit,
                                   branch=branch, expected_sha=ctx.head.sha, token=token)
        except PushRejected as exc:
            await _end(gh, client, request.run_id, Outcome.STALE,
                       f"{branch} moved before the push; nothing was written ({exc})")
            enqueue_run(unit, RunRequest(repository=request.repository, number=request.number,
                                         installation_id=request.installation_id,
                                         trigger="the branch moved during a push"),
                        dedupe=f"after-stale:{request.run_id}")
            return

        def finish() -> None:
            with gh.runs.open(request.run_id) as handle:
                if not any(e.action is AuditAction.REF_UPDATED for e in handle.events):
                    handle.record(AuditAction.REF_UPDATED, {
                        "ref": f"refs/heads/{branch}", "remote": request.repository,
                        "before": ctx.head.sha, "after": commit})
                handle.transition(RunState.DONE, outcome=Outcome.APPLIED,
                                  reason=f"pushed {commit[:12]} to {branch}")

        await asyncio.to_thread(finish)
        log.info("apply.pushed", commit=commit, branch=branch)
        await publish(gh, client, request.run_id, comment=True)


def _verified(gh: GitHubService, run_id: str) -> ApprovalRecord:
    with gh.runs.open(run_id) as handle:
        return verify_approval(handle, gh.runs.signer)


async def _still_holds(gh: GitHubService, client: RepoClient, pr: PullRequest,
                       record: ApprovalRecord, head: str, base: str, base_ref: str,
                       resuming: bool) -> None:
    """Everything the approval stood on, checked against GitHub now."""
    if pr.state != "open":
        raise ApprovalRefused("the pull request was closed", code="closed")
    if pr.draft:
        raise ApprovalRefused("the pull request became a draft", code="draft")
    if not resuming:  # after our own push the head is ours; the audit log has the rest
        moved = await _head_and_base_hold(client, pr, head, base, base_ref)
        if moved:
            raise ApprovalRefused(moved, code="stale")
    assert record.comment is not None
    comment = await client.get_comment(record.comment.id)
    if comment is None:
        raise ApprovalRefused("the approving comment was deleted", code="comment_deleted")
    if sha256_hex(comment.body.encode()) != record.comment.body_sha256:
        raise ApprovalRefused("the approving comment was edited", code="comment_edited")
    config_role = await _approver_role_needed(client)
    permission = await client.get_collaborator_permission(record.approver.login)
    if not role_meets(role_of(permission.role_name, permission.permission), config_role):
        raise ApprovalRefused(f"@{record.approver.login} no longer has the role to approve",
                              code="permission_lost")


async def _approver_role_needed(client: RepoClient) -> Any:
    from bot.github.runner import load_config

    try:
        return (await load_config(client)).approver_role
    except ValueError:
        from bot.github.repo_config import Role

        return Role.ADMIN  # a broken config at push time: only an admin's approval stands


def _commit_once(gh: GitHubService, run_id: str, record: ApprovalRecord, bot_login: str) -> str:
    """The merge commit of the approved patch, made once (found in the audit log after a
    crash), in the repository cache."""
    with gh.runs.open(run_id) as handle:
        made = [e for e in handle.events if e.action is AuditAction.COMMIT_CREATED]
        if made:
            return str(made[-1].data["commit"])
        ctx = handle.ctx
        if ctx.state is RunState.AWAITING_APPROVAL:
            handle.record(AuditAction.APPLY_STARTED, {
                "approver": record.approver.login,
                "patch": format_patch_hash(record.patch_sha256)})
            handle.transition(RunState.APPLYING, reason=f"approved by @{record.approver.login}")
        return _make_commit(handle, record, bot_login)


def _make_commit(handle: RunHandle, record: ApprovalRecord, bot_login: str) -> str:
    ctx = handle.ctx
    if ctx.workspace is None:
        raise GwiError("the run has no repository cache")
    repo = Path(ctx.workspace)
    patch = handle.read_bytes("patch.diff") or b""
    if sha256_hex(patch) != record.patch_sha256:
        raise GwiError("patch.diff no longer matches the approval")
    tree = git.apply_patch_to_tree(repo, git.tree_of(repo, ctx.head.sha), patch)
    message = (f"Merge {ctx.base.ref} into {ctx.head.ref}\n\n"
               f"Conflicts resolved by gwi run {ctx.run_id}.\n"
               f"Patch {format_patch_hash(record.patch_sha256)}, approved by"
               f" @{record.approver.login}.\n")
    email = f"{bot_login}@users.noreply.github.com"
    identity = {"GIT_AUTHOR_NAME": bot_login, "GIT_AUTHOR_EMAIL": email,
                "GIT_COMMITTER_NAME": bot_login, "GIT_COMMITTER_EMAIL": email}
    commit = git.commit_tree(repo, tree, [ctx.head.sha, ctx.base.sha], message, env=identity)
    handle.record(AuditAction.COMMIT_CREATED,
                  {"commit": commit, "tree": tree, "parents": [ctx.head.sha, ctx.base.sha]})
    return commit


def _touches_workflows(gh: GitHubService, run_id: str) -> bool:
    patch = gh.runs.read_bytes(run_id, "patch.diff") or b""
    return any(line.startswith((b"+++ b/" + WORKFLOWS_PREFIX.encode(),
                                b"--- a/" + WORKFLOWS_PREFIX.encode()))
               for line in patch.split(b"\n"))


async def _end(gh: GitHubService, client: RepoClient, run_id: str, outcome: Outcome,
               reason: str) -> None:
    def end() -> None:
        with gh.runs.open(run_id) as handle:
            if handle.finished:
                return
            handle.record(AuditAction.APPLY_REFUSED, {"code": outcome.value, "reason": reason})
            handle.transition(RunState.ABORTED, outcome=outcome, reason=reason[:3000])

    await asyncio.to_thread(end)
    log.warning("apply.refused", outcome=outcome.value, reason=reason)
    await publish(gh, client, run_id, comment=True)


async def _refuse_apply(gh: GitHubService, client: RepoClient, request: ApplyRequest,
                        refusal: ApprovalRefused, unit: UnitOfWork) -> None:
    outcome = Outcome.STALE if refusal.code == "stale" else Outcome.CANCELLED
    await _end(gh, client, request.run_id, outcome, f"nothing was pushed: {refusal.reason}")
    if outcome is Outcome.STALE:
        enqueue_run(unit, RunRequest(repository=request.repository, number=request.number,
                                     installation_id=request.installation_id,
                                     trigger="the head moved before the push"),
                    dedupe=f"after-stale:{request.run_id}")


JOB_HANDLERS = {APPLY_JOB: push_approved}
