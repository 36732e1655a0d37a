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
from typing import Any

from bot import logs
from bot.engine.approval import (
    ApprovalRefused,
    verify_approval,
)
from bot.errors import GitError
from bot.github.approval_checks import (
    comment_holds,
    current_role,
    head_and_base_hold,
    is_author,
    is_requester,
    same_login,
)
from bot.github.approved_commit import commit_once
from bot.github.capabilities import PUSH_PERMISSIONS
from bot.github.client import RepoClient
from bot.github.failures import GitHubError, PushRejected, UnapprovedPush
from bot.github.jobs import ApplyRequest, RunRequest, enqueue_run
from bot.github.models import CheckOutput, PullRequest
from bot.github.publish import load_config, publish, report_base_moved
from bot.github.render import COMMENT_MARKER
from bot.github.repo_cache import SHA_RE, RepoCache, Token, check_url, last_lines
from bot.github.repo_config import (
    RepoConfigError,
    Role,
)
from bot.github.service import GitHubService
from bot.queue.records import Job, UnitOfWork
from bot.repo import plumbing as git
from bot.runs.bundle import RunDamaged
from bot.runs.signing import verify_signature
from bot.schemas.approval import ApprovalRecord, ApproverKind
from bot.schemas.audit import AuditAction
from bot.schemas.run import CapabilityMode
from bot.schemas.state import Outcome, RunState

log = logs.get_logger("gwi.gate")


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
        repo = await gh.workspace(client, ctx)  # this host's cache: the run may be another's
        commit = await asyncio.to_thread(commit_once, gh.runs, request.run_id, record,
                                         await gh.app.bot_login(), repo)
        permissions = dict(PUSH_PERMISSIONS)
        # Read from the trees, not the patch text: a mode change, an empty new file or a binary
        # file has no `+++` line, and the base's own workflow changes arrive with the merge too.
        changed = await asyncio.to_thread(git.changed_paths, repo, ctx.head.sha, commit)
        workflows = any(path.startswith(WORKFLOWS_PREFIX) for path in changed)
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
        # GitHub offers no compare-and-swap on a PR's base: narrow the window as far as it
        # allows by looking once more now that the token exists, just before the push.
        pr = await client.get_pull_request(request.number)
        moved = await head_and_base_hold(client, pr, ctx.head.sha, ctx.base.sha, ctx.base.ref)
        if moved:
            await _refuse_apply(gh, client, request, ApprovalRefused(moved, code="stale"), unit)
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
        # ...and once right after: a base that moved (or a retargeted PR) in that window is
        # said at once, naming the commit pushed, on the check-run and in a comment.
        after = await client.get_pull_request(request.number)
        late = await head_and_base_hold(client, after, after.head.sha, ctx.base.sha,
                                        ctx.base.ref)  # the head is ours now: the base only
        if late:
            await report_base_moved(gh, client, request.run_id, request.number, commit, late)


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
    moved = await head_and_base_hold(client, pr, head, base, base_ref)
    if moved:
        raise ApprovalRefused(moved, code="stale")
    await comment_holds(client, record.comment.id, record.comment.body_sha256,
                         record.approver.login)
    try:
        config = await load_config(client)
        needed, self_ok = config.approver_role, config.allow_self_approval
    except RepoConfigError:
        needed, self_ok = Role.ADMIN, False  # a broken config at push time: only an admin
    if not self_ok and is_author(pr, record.approver.login, record.approver.id):
        raise ApprovalRefused("this repository does not let authors approve their own pull"
                              " requests", code="self_approval")
    if not self_ok and is_requester(gh.runs.read_context(record.run_id), record.approver.login):
        raise ApprovalRefused("this repository does not let the person who asked for a run"
                              " approve it", code="self_approval")
    if await current_role(client, record.approver.login, record.approver.id or 0, needed) is None:
        raise ApprovalRefused(f"@{record.approver.login} no longer has the role to approve",
                              code="permission_lost")


def _push_url(pr: PullRequest, repository: str, capabilities: CapabilityMode) -> str:
    """Where the branch lives: this repository, or a fork that lets maintainers edit it."""
    if capabilities is not CapabilityMode.GATED_WRITE:
        raise ApprovalRefused("gwi may not push to this pull request's branch", code="read_only")
    head_repo = pr.head.repo
    if head_repo is None or not head_repo.clone_url:
        raise ApprovalRefused("the pull request's branch no longer exists", code="head_gone")
    if not same_login(head_repo.full_name, repository) and not pr.maintainer_can_modify:
        raise ApprovalRefused("the fork no longer allows edits by maintainers",
                              code="fork_closed")
    return head_repo.clone_url


WORKFLOWS_PREFIX = ".github/workflows/"


async def _finish(gh: GitHubService, client: RepoClient, request: ApplyRequest, branch: str,
                  before: str, commit: str) -> None:
    gh.metrics.pushes.labels("pushed").inc()

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
    gh.metrics.pushes.labels("failed").inc()
    fork = pr.head.repo is not None and not same_login(pr.head.repo.full_name,
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
    gh.metrics.pushes.labels("refused").inc()
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
    gh.metrics.pushes.labels("damaged").inc()
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


async def _push_with_lease(
    cache: RepoCache,
    repository: str,
    clone_url: str,
    *,
    commit: str,
    branch: str,
    expected_sha: str,
    token: Token | None,
    approval: ApprovalRecord,
    trusted_key: str,
) -> None:
    """Push ``commit`` to ``branch`` only if the branch still points at ``expected_sha``.

    ONLY THE APPROVAL GATE MAY CALL THIS; nothing else in gwi pushes. It takes the approval
    record and checks it once more itself: signed by ``trusted_key`` (gwi's own key), for
    the head the lease expects, and for this commit, whose parents must be that head and
    the approved base (the merge the approval is for). Anything else raises
    :class:`UnapprovedPush` before git runs. Pushing a commit the branch already points at
    is a no-op that succeeds (git checks no lease when nothing moves). The lease
    (``--force-with-lease=<ref>:<sha>``) makes the check and the update one atomic step on
    the remote, so a push that raced ours is never overwritten: the push is refused and
    :class:`PushRejected` raised instead.
    """
    check_url(clone_url)
    if not SHA_RE.fullmatch(commit) or not SHA_RE.fullmatch(expected_sha):
        raise ValueError("commit and expected_sha must be full lower-case commit ids")
    if not branch or branch.startswith(("-", "refs/")) or ".." in branch:
        raise ValueError(f"not a branch name: {branch!r}")
    sig = approval.signature
    if sig.public_key != trusted_key or not verify_signature(
        sig.public_key, sig.value, approval.signed_bytes()
    ):
        raise UnapprovedPush("refusing to push: the approval record is not signed by gwi's key")
    if approval.head_sha != expected_sha:
        raise UnapprovedPush("refusing to push: the approval is for another head")
    target = f"refs/heads/{branch}"
    lease = f"--force-with-lease={target}:{expected_sha}"
    async with cache.locked(repository) as git_dir:
        parents, _, _ = await cache.run_git(["rev-list", "--parents", "-n", "1", commit], git_dir,
                                         check=False)
        if parents.split()[1:] != [approval.head_sha, approval.base_sha]:
            raise UnapprovedPush(f"refusing to push: {commit[:12]} is not the merge of the"
                                 " approved head and base")
        out, err, code = await cache.run_git(
            ["push", "--porcelain", lease, "--", clone_url, f"{commit}:{target}"],
            git_dir,
            token=token,
            url=clone_url,
            check=False,
        )
    # --porcelain: one "<flag>\t<src>:<dst>\t<summary>" line per ref; "!" means refused.
    rejected = [line for line in out.splitlines() if line.startswith("!")]
    if rejected:
        detail = rejected[0].split("\t")[-1]
        raise PushRejected(f"push of {commit[:12]} to {branch} refused: {detail}")
    if code != 0:
        raise GitError(f"push of {commit[:12]} to {branch} failed: {last_lines(err)}")
    log.info("push.done", commit=commit, repository=repository, branch=branch, lease=expected_sha)
