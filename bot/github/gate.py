"""The approval gate: the only way gwi commits or pushes on GitHub.

An approval is accepted only from a new `/gwi approve sha256:<hash>` comment, written after the
patch existed, by a person whose *current* role (`role_name`) meets the repository's setting,
naming the exact patch of the pull request's current run, while the PR is open, not a draft, and
its head and base are the ones the run reviewed. It becomes a signed `approval.json`. Then
`push_approved`, the one function that pushes, re-verifies all of it against GitHub at that
moment, builds the merge commit from the approved bytes, mints a token with contents write just
for the push, and pushes with a compare-and-swap on the branch (`--force-with-lease`). If the head
moved, nothing is written, the run is aborted as stale, and a new run starts for the new head.
docs/github-capabilities.md walks through every check and the attack each one stops.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot import logs
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
from bot.github.errors import GitError, GitHubError, PushRejected
from bot.github.git import _push_with_lease
from bot.github.models import CheckOutput, PullRequest
from bot.github.render import COMMENT_MARKER
from bot.github.repo_config import RepoConfig, RepoConfigError, Role, role_meets, role_of
from bot.github.runner import RunRequest, enqueue_run, load_config, pr_key, publish
from bot.github.service import GitHubService
from bot.repo import plumbing as git
from bot.runs.bundle import RunDamaged
from bot.runs.handle import RunHandle
from bot.schemas.approval import ApprovalRecord, ApproverKind
from bot.schemas.audit import AuditAction
from bot.schemas.common import format_patch_hash, sha256_hex, utcnow
from bot.schemas.run import Actor, ActorType, CapabilityMode
from bot.schemas.state import Outcome, RunState

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


# -- checks shared by accepting and pushing -----------------------------------------------------

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


async def _role_of(client: RepoClient, login: str, account_id: int, needed: Role) -> str | None:
    """The role ``login`` holds now, if it is the account ``account_id`` and meets ``needed``.

    The id is compared because a login can change hands: the record binds the account, and
    whoever holds the name today is not necessarily who approved.
    """
    permission = await client.get_collaborator_permission(login)
    if permission.user is not None and permission.user.id != account_id:
        return None
    role = role_of(permission.role_name, permission.permission)
    if not role_meets(role, needed):
        return None
    return role.value if role else permission.role_name


def _same_login(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()  # GitHub logins ignore case


def _is_author(pr: PullRequest, login: str, account_id: int | None) -> bool:
    """Whether the approver wrote the pull request (the same account, whatever its login)."""
    if pr.user is None:
        return False
    return pr.user.id == account_id or _same_login(pr.user.login, login)


async def _comment_holds(client: RepoClient, comment_id: int, body_sha256: str,
                         login: str) -> None:
    """The approving comment still exists, by its author, with the very words approved."""
    comment = await client.get_comment(comment_id)
    if comment is None:
        raise ApprovalRefused("the approving comment was deleted", code="comment_deleted")
    if comment.user is not None and not _same_login(comment.user.login, login):
        raise ApprovalRefused("the approving comment is not by the approver",
                              code="comment_author")
    if sha256_hex(comment.body.encode()) != body_sha256:
        raise ApprovalRefused("the approving comment was edited", code="comment_edited")


# -- accepting an approval --------------------------------------------------------------------

async def _allowed(gh: GitHubService, client: RepoClient, person: Commenter,
                   config: RepoConfig) -> str:
    """The person's role if they may approve; refuses bots, the App and too weak a role.

    `author_association` in the payload is never consulted: it is not an authorisation (private
    organisation members show up as CONTRIBUTOR or NONE, and it lags behind role changes).
    """
    if person.is_bot or _same_login(person.login, await gh.app.bot_login()):
        raise ApprovalRefused("approvals come from people, not from apps or bots", code="bot")
    role = await _role_of(client, person.login, person.id, config.approver_role)
    if role is None:
        raise ApprovalRefused(
            f"@{person.login} needs the {config.approver_role.value} role or higher to approve",
            code="permission",
        )
    return role


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
    if not config.allow_self_approval and _is_author(pr, request.sender.login,
                                                      request.sender.id):
        raise ApprovalRefused("this repository does not let authors approve their own pull"
                              " requests", code="self_approval")
    await _comment_holds(client, request.comment_id,
                         sha256_hex(request.comment_body.encode()), request.sender.login)
    run = await gh.index.latest(request.repository, request.number)
    if run is None:
        raise ApprovalRefused("there is no gwi run on this pull request", code="no_run")
    ctx = gh.runs.read_context(run.run_id)
    if ctx.capabilities is CapabilityMode.READ_ONLY:
        raise ApprovalRefused("gwi may not push to this pull request's branch: apply the"
                              " patch by hand", code="read_only")
    moved = await _head_and_base_hold(client, pr, run.head_sha, run.base_sha, ctx.base.ref)
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
    unit.enqueue_job(APPLY_JOB, ApplyRequest(repository=request.repository,
                                             number=request.number,
                                             installation_id=request.installation_id,
                                             run_id=run.run_id).model_dump(),
                     key=pr_key(request.repository, request.number),
                     idempotency_key=f"apply:{run.run_id}")
    return (f"Approved by @{approval.approver.login}: pushing"
            f" {format_patch_hash(approval.patch_sha256)}.")


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


async def audit_refusal(gh: GitHubService, run: IndexedRun | None, action: AuditAction,
                        refusal: ApprovalRefused, who: str, extra: dict[str, Any]) -> None:
    """Write a refusal into the run's audit log, when there is a run still open to write to
    (a finished run is sealed and signed; the structured log line still has it)."""
    if run is None:
        return

    def write() -> None:
        with gh.runs.open(run.run_id) as handle:
            if not handle.finished:
                handle.record(action, {"code": refusal.code, "reason": refusal.reason, **extra},
                              Actor(type=ActorType.USER, id=who[:255] or "unknown"))

    try:
        await asyncio.to_thread(write)
    except RunDamaged as exc:
        log.error("refusal.unrecorded", run_id=run.run_id, error=str(exc))


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
        except RunDamaged as exc:
            await _damaged(gh, client, request, exc)
            return
        except ApprovalRefused as refusal:
            await _refuse_apply(gh, client, request, refusal, unit)
            return
        pr = await client.get_pull_request(request.number)
        landed = await asyncio.to_thread(_recorded_commit, gh, request.run_id)
        if landed is not None and pr.head.sha == landed:
            # A crash came between the push and recording it: the push is done, only the
            # record is missing. Nothing said later can unsay a push that happened.
            await _finish(gh, client, request, pr.head.ref, ctx.head.sha, landed)
            return
        try:
            await _still_holds(gh, client, pr, record, ctx.head.sha, ctx.base.sha, ctx.base.ref)
            push_url = _push_url(pr, request.repository, ctx.capabilities)
        except ApprovalRefused as refusal:
            await _refuse_apply(gh, client, request, refusal, unit)
            return
        branch = pr.head.ref
        commit = await asyncio.to_thread(_commit_once, gh, request.run_id, record,
                                         await gh.app.bot_login())
        permissions = dict(PUSH_PERMISSIONS)
        workflows = await asyncio.to_thread(_touches_workflows, Path(ctx.workspace or "."),
                                            ctx.head.sha, commit)
        if workflows:
            permissions["workflows"] = "write"
        try:
            # Minted for this push alone, after every check, and cached nowhere.
            token = await gh.app.auth.mint_once(request.installation_id, request.repository,
                                                permissions)
        except GitHubError as exc:
            if exc.status not in (403, 422):
                raise  # GitHub is failing, not refusing: try again later
            if workflows:
                why = ("the patch changes files under .github/workflows/, and this installation"
                       " of the App does not have the workflows permission: apply the patch by"
                       " hand, or grant the permission and run gwi again")
                await _end(gh, client, request.run_id, Outcome.CANCELLED, why, "workflows")
            else:
                await _end(gh, client, request.run_id, Outcome.CANCELLED,
                           "the App may not write to this repository", "no_write_permission")
            return
        try:
            await _push_with_lease(gh.cache, request.repository, push_url, commit=commit,
                                   branch=branch, expected_sha=ctx.head.sha, token=token,
                                   approval=record, trusted_key=gh.runs.signer.public_key_hex)
        except PushRejected as exc:
            await _end(gh, client, request.run_id, Outcome.STALE,
                       f"{branch} moved before the push; nothing was written ({exc})", "stale")
            enqueue_run(unit, RunRequest(repository=request.repository, number=request.number,
                                         installation_id=request.installation_id,
                                         trigger="the branch moved during a push"),
                        dedupe=f"after-stale:{request.run_id}")
            return
        except GitError as exc:
            if job.attempts < job.max_attempts:
                raise  # tried again; if this push did land, the retry finds it
            await _push_failed(gh, client, request, pr, exc)
            return
        await _finish(gh, client, request, branch, ctx.head.sha, commit)


def _verified(gh: GitHubService, run_id: str) -> ApprovalRecord:
    with gh.runs.open(run_id) as handle:
        return verify_approval(handle, gh.runs.signer)


def _recorded_commit(gh: GitHubService, run_id: str) -> str | None:
    made = [e for e in gh.runs.read_chain(run_id).events
            if e.action is AuditAction.COMMIT_CREATED]
    return str(made[-1].data["commit"]) if made else None


async def _still_holds(gh: GitHubService, client: RepoClient, pr: PullRequest,
                       record: ApprovalRecord, head: str, base: str, base_ref: str) -> None:
    """Everything the approval stood on, checked against GitHub now."""
    if record.approver.kind is not ApproverKind.GITHUB_USER or record.comment is None:
        raise ApprovalRefused("the approval was not given on the pull request",
                              code="not_on_github")
    if pr.state != "open":
        raise ApprovalRefused("the pull request was closed", code="closed")
    if pr.draft:
        raise ApprovalRefused("the pull request became a draft", code="draft")
    moved = await _head_and_base_hold(client, pr, head, base, base_ref)
    if moved:
        raise ApprovalRefused(moved, code="stale")
    await _comment_holds(client, record.comment.id, record.comment.body_sha256,
                         record.approver.login)
    try:
        config = await load_config(client)
        needed, self_ok = config.approver_role, config.allow_self_approval
    except RepoConfigError:
        needed, self_ok = Role.ADMIN, False  # a broken config at push time: only an admin
    if not self_ok and _is_author(pr, record.approver.login, record.approver.id):
        raise ApprovalRefused("this repository does not let authors approve their own pull"
                              " requests", code="self_approval")
    if await _role_of(client, record.approver.login, record.approver.id or 0, needed) is None:
        raise ApprovalRefused(f"@{record.approver.login} no longer has the role to approve",
                              code="permission_lost")


def _push_url(pr: PullRequest, repository: str, capabilities: CapabilityMode) -> str:
    """Where the branch lives: this repository, or a fork that lets maintainers edit it."""
    if capabilities is not CapabilityMode.GATED_WRITE:
        raise ApprovalRefused("gwi may not push to this pull request's branch", code="read_only")
    head_repo = pr.head.repo
    if head_repo is None or not head_repo.clone_url:
        raise ApprovalRefused("the pull request's branch no longer exists", code="head_gone")
    if not _same_login(head_repo.full_name, repository) and not pr.maintainer_can_modify:
        raise ApprovalRefused("the fork no longer allows edits by maintainers",
                              code="fork_closed")
    return head_repo.clone_url


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


def _touches_workflows(repo: Path, head: str, commit: str) -> bool:
    """Whether pushing ``commit`` onto ``head`` changes anything under .github/workflows/.

    Read from the trees, not the patch text: a mode change, an empty new file or a binary
    file has no ``+++`` line, and the base's own workflow changes arrive with the merge too.
    """
    out = git.run_git(repo, "diff", "--name-only", "--no-renames", "-z", head, commit).stdout
    return any(path.startswith(WORKFLOWS_PREFIX.encode()) for path in out.split(b"\0"))


async def _finish(gh: GitHubService, client: RepoClient, request: ApplyRequest, branch: str,
                  before: str, commit: str) -> None:
    def finish() -> None:
        with gh.runs.open(request.run_id) as handle:
            if handle.finished:
                return
            if not any(e.action is AuditAction.REF_UPDATED for e in handle.events):
                handle.record(AuditAction.REF_UPDATED, {
                    "ref": f"refs/heads/{branch}", "remote": request.repository,
                    "before": before, "after": commit})
            handle.transition(RunState.DONE, outcome=Outcome.APPLIED,
                              reason=f"pushed {commit[:12]} to {branch}")

    await asyncio.to_thread(finish)
    log.info("apply.pushed", commit=commit, branch=branch)
    await publish(gh, client, request.run_id, comment=True)


async def _push_failed(gh: GitHubService, client: RepoClient, request: ApplyRequest,
                       pr: PullRequest, exc: GitError) -> None:
    """The last try to push failed. On a fork that is GitHub saying the App may not write
    there: the run hands the patch over. On the repository itself the run fails."""
    fork = pr.head.repo is not None and not _same_login(pr.head.repo.full_name,
                                                        request.repository)

    def end() -> None:
        with gh.runs.open(request.run_id) as handle:
            if handle.finished:
                return
            if fork:
                reason = ("gwi could not push to the fork; nothing was written: apply the"
                          " patch by hand")
                handle.record(AuditAction.APPLY_REFUSED, {"code": "fork_push_failed",
                                                          "reason": reason,
                                                          "error": str(exc)[:2000]})
                handle.transition(RunState.DONE, outcome=Outcome.HANDED_OFF, reason=reason)
            else:
                handle.fail(f"the push failed: {exc}"[:3000])

    await asyncio.to_thread(end)
    log.warning("apply.push_failed", fork=fork, error=str(exc))
    await publish(gh, client, request.run_id, comment=True)


async def _end(gh: GitHubService, client: RepoClient, run_id: str, outcome: Outcome,
               reason: str, code: str) -> None:
    def end() -> None:
        with gh.runs.open(run_id) as handle:
            if handle.finished:
                return
            handle.record(AuditAction.APPLY_REFUSED, {"code": code, "reason": reason})
            handle.transition(RunState.ABORTED, outcome=outcome, reason=reason[:3000])

    await asyncio.to_thread(end)
    log.warning("apply.refused", outcome=outcome.value, code=code, reason=reason)
    await publish(gh, client, run_id, comment=True)


async def _refuse_apply(gh: GitHubService, client: RepoClient, request: ApplyRequest,
                        refusal: ApprovalRefused, unit: UnitOfWork) -> None:
    outcome = Outcome.STALE if refusal.code == "stale" else Outcome.CANCELLED
    await _end(gh, client, request.run_id, outcome, f"nothing was pushed: {refusal.reason}",
               refusal.code)
    if outcome is Outcome.STALE:
        enqueue_run(unit, RunRequest(repository=request.repository, number=request.number,
                                     installation_id=request.installation_id,
                                     trigger="the pull request moved before the push"),
                    dedupe=f"after-stale:{request.run_id}")


async def _damaged(gh: GitHubService, client: RepoClient, request: ApplyRequest,
                   exc: RunDamaged) -> None:
    """The run's files no longer match its audit log: stop, push nothing, and say so where
    people look (the bundle cannot take another line: it fails its own check)."""
    log.error("apply.damaged", error=str(exc))
    why = ("gwi stopped: this run's files changed after they were recorded, so nothing was"
           " pushed. Run `/gwi run` for a fresh run.")
    run = await gh.index.get(request.run_id)
    if run is not None and run.check_run_id is not None:
        await client.update_check_run(run.check_run_id, status="completed", conclusion="failure",
                                      output=CheckOutput(title="gwi stopped: run files altered",
                                                         summary=why))
    await client.upsert_marked_comment(request.number, COMMENT_MARKER, f"### gwi: stopped\n\n{why}")
    await gh.index.set_finished(request.run_id)


JOB_HANDLERS = {APPLY_JOB: push_approved}
