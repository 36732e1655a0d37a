"""Runs on a local repository: create one from two revisions, approve its patch, apply it.

`apply_local` is the only code that writes to a user's repository, and it writes only through a
verified approval: it re-checks the approval, the patch's hash and both revisions at that moment,
builds the merge commit from the approved patch bytes, and moves the head branch with a
compare-and-swap. If anything moved, nothing is written and the run is aborted as stale.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bot.engine.approval import (
    ApprovalRefused,
    approval_fields,
    check_approvable,
    sign_approval,
    verify_approval,
)
from bot.engine.pipeline import workspace
from bot.errors import GwiError
from bot.repo import plumbing as git
from bot.runs.handle import RunHandle
from bot.runs.store import RunStore
from bot.schemas.approval import ApprovalRecord, ApproverKind
from bot.schemas.audit import AuditAction
from bot.schemas.common import format_patch_hash, utcnow
from bot.schemas.run import Actor, ActorType, AgentConfig, RunContext
from bot.schemas.state import Outcome, RunState

# A commit needs an author; when the user has none configured, gwi signs as itself.
FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "gwi",
    "GIT_AUTHOR_EMAIL": "gwi@localhost",
    "GIT_COMMITTER_NAME": "gwi",
    "GIT_COMMITTER_EMAIL": "gwi@localhost",
}


def _repo_name(repo: Path) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "-", repo.name)[:100].strip(".") or "repository"


def start_local_run(
    store: RunStore, repo: Path, base: str, head: str, initiator: str, agents: AgentConfig
) -> str:
    """Create a queued run for merging ``base`` into ``head`` in the repository at ``repo``."""
    repo = git.check_repository(repo).resolve()
    head_sha = git.resolve_commit(repo, head)
    full = git.run_git(repo, "rev-parse", "--symbolic-full-name", head,
                       ok_codes=(0, 128)).stdout.decode().strip()
    if head.startswith("-") or not full.startswith("refs/heads/"):
        # `gwi apply` moves the head branch: a patch for a commit id could never be applied.
        raise GwiError(f"--head {head!r} is not a local branch: give the branch that gwi apply"
                       " should move (check one out with `git branch NAME COMMIT` first)")
    base_sha = git.resolve_commit(repo, base)
    name = _repo_name(repo)
    return store.create(
        {
            "repository": {"owner": "local", "name": name, "full_name": f"local/{name}"},
            "base": {"ref": base, "sha": base_sha},
            "head": {"ref": head, "sha": head_sha},
            "initiator": {"type": ActorType.USER, "id": initiator},
            "agents": agents,
            "workspace": str(repo),
        },
        actor=Actor(type=ActorType.USER, id=initiator),
    )


def approve_local(store: RunStore, run_id: str, hash_text: str, approver: str) -> ApprovalRecord:
    """Record ``approver``'s approval of the exact patch named by ``hash_text``, or refuse (and
    audit the refusal)."""
    person = Actor(type=ActorType.USER, id=approver)
    with store.open(run_id) as run:
        if run.finished:
            raise ApprovalRefused(
                f"the run is {run.ctx.state.value}: there is nothing to approve", code="finished"
            )
        try:
            digest = check_approvable(run, hash_text)
            existing = run.read_model("approval.json", ApprovalRecord)
            if existing is not None:
                raise ApprovalRefused(
                    f"the run is already approved by {existing.approver.login} at"
                    f" {existing.approved_at.isoformat()}", code="already_approved")
        except ApprovalRefused as refusal:
            run.record(AuditAction.APPROVAL_REFUSED,
                       {"code": refusal.code, "reason": refusal.reason,
                        "offered": hash_text[:100]}, person)
            raise
        record = sign_approval(
            store.signer,
            approval_fields(run, digest, {"kind": ApproverKind.LOCAL_USER, "login": approver},
                            utcnow()),
        )
        run.write_artifact("approval.json", record, actor=person)
        run.record(AuditAction.APPROVAL_RECORDED,
                   {"patch": format_patch_hash(digest), "approver": approver}, person)
        return record


def abort_local(store: RunStore, run_id: str, who: str, reason: str | None = None) -> RunContext:
    """End a local run that has not finished: aborted, cancelled, with who did it and why."""
    person = Actor(type=ActorType.USER, id=who)
    with store.open(run_id) as run:
        if run.finished:
            raise GwiError(f"run {run_id} is already {run.ctx.state.value}: nothing to abort")
        return run.transition(RunState.ABORTED, reason=reason or f"aborted by {who}",
                              actor=person, outcome=Outcome.CANCELLED)


@dataclass(frozen=True)
class Applied:
    state: RunState
    outcome: Outcome | None
    branch: str
    before: str
    after: str | None  # the new commit, when the branch moved
    reason: str


def _branch(repo: Path, name: str) -> str:
    if name.startswith("-"):
        raise ApprovalRefused(f"not a branch name: {name!r}", code="not_a_branch")
    full = git.run_git(repo, "rev-parse", "--symbolic-full-name", name,
                       ok_codes=(0, 128)).stdout.decode().strip()
    if not full.startswith("refs/heads/"):
        raise ApprovalRefused(
            f"the head {name!r} is not a local branch, so there is nothing to move",
            code="not_a_branch",
        )
    return full


def _checked_out(repo: Path, branch: str) -> bool:
    listing = git.run_git(repo, "worktree", "list", "--porcelain").stdout.decode()
    return f"branch {branch}" in listing.splitlines()


def _identity(repo: Path) -> dict[str, str] | None:
    proc = git.run_git(repo, "var", "GIT_COMMITTER_IDENT", ok_codes=(0, 128))
    return None if proc.returncode == 0 else FALLBACK_IDENTITY


def apply_local(store: RunStore, run_id: str, applier: str) -> Applied:
    """Commit and move the head branch to exactly the approved patch, or refuse."""
    person = Actor(type=ActorType.USER, id=applier)
    with store.open(run_id) as run:
        ctx = run.ctx
        repo = workspace(ctx)
        if ctx.state is RunState.APPLYING:  # an apply a crash interrupted: finish it
            return _finish(run, repo, _branch(repo, ctx.head.ref))
        if run.finished:  # sealed: the refusal cannot (and need not) go into its log
            raise ApprovalRefused(f"the run is {ctx.state.value}"
                                  + (f" ({ctx.outcome.value})" if ctx.outcome else "")
                                  + ": there is nothing to apply", code="finished")
        try:
            if ctx.state is not RunState.AWAITING_APPROVAL:
                raise ApprovalRefused(f"the run is {ctx.state.value}, not awaiting approval",
                                      code="not_awaiting_approval")
            record = verify_approval(run, store.signer)
            branch = _branch(repo, ctx.head.ref)
            if _checked_out(repo, branch):
                raise ApprovalRefused(
                    f"{branch} is checked out in a worktree; gwi never changes a working tree:"
                    " switch to another branch and run gwi apply again", code="checked_out")
        except ApprovalRefused as refusal:
            run.record(AuditAction.APPLY_REFUSED,
                       {"code": refusal.code, "reason": refusal.reason}, person)
            raise
        moved = _moved(repo, run, branch)
        if moved:
            run.record(AuditAction.APPLY_REFUSED, {"code": "stale", "reason": moved}, person)
            run.transition(RunState.ABORTED, outcome=Outcome.STALE, reason=moved, actor=person)
            return Applied(RunState.ABORTED, Outcome.STALE, branch, ctx.head.sha, None, moved)
        run.record(AuditAction.APPLY_STARTED,
                   {"approver": record.approver.login,
                    "patch": format_patch_hash(record.patch_sha256), "branch": branch}, person)
        run.transition(RunState.APPLYING, reason=f"approved by {record.approver.login}",
                       actor=person)
        return _finish(run, repo, branch)


def _moved(repo: Path, run: RunHandle, branch: str) -> str | None:
    ctx = run.ctx
    head_now = git.resolve_commit(repo, branch)
    base_now = git.resolve_commit(repo, ctx.base.ref)
    if head_now != ctx.head.sha:
        return f"{branch} moved from {ctx.head.sha[:12]} to {head_now[:12]} after the review"
    if base_now != ctx.base.sha:
        return f"{ctx.base.ref} moved from {ctx.base.sha[:12]} to {base_now[:12]} after the review"
    return None


def _finish(run: RunHandle, repo: Path, branch: str) -> Applied:
    """Create the merge commit once, then compare-and-swap the branch onto it."""
    ctx = run.ctx
    created = [e for e in run.events if e.action is AuditAction.COMMIT_CREATED]
    if created:
        commit = str(created[-1].data["commit"])
    else:
        record = verify_approval(run, run.store.signer)  # the bytes, once more, right before
        patch = run.read_bytes("patch.diff") or b""
        tree = git.apply_patch_to_tree(repo, git.tree_of(repo, ctx.head.sha), patch)
        message = (
            f"Merge {ctx.base.ref} into {ctx.head.ref}\n\n"
            f"Conflicts resolved by gwi run {ctx.run_id}.\n"
            f"Patch {format_patch_hash(record.patch_sha256)}, approved by"
            f" {record.approver.login}.\n"
        )
        commit = git.commit_tree(repo, tree, [ctx.head.sha, ctx.base.sha], message,
                                 env=_identity(repo))
        run.record(AuditAction.COMMIT_CREATED,
                   {"commit": commit, "tree": tree, "parents": [ctx.head.sha, ctx.base.sha]})
    now = git.resolve_commit(repo, branch)
    if now != commit and (now != ctx.head.sha or not git.update_ref_cas(
        repo, branch, commit, ctx.head.sha, f"gwi: apply run {ctx.run_id}"
    )):
        why = f"{branch} moved to {git.resolve_commit(repo, branch)[:12]} before the update"
        run.transition(RunState.ABORTED, outcome=Outcome.STALE, reason=why)
        return Applied(RunState.ABORTED, Outcome.STALE, branch, ctx.head.sha, None, why)
    if not any(e.action is AuditAction.REF_UPDATED for e in run.events):
        run.record(AuditAction.REF_UPDATED,
                   {"ref": branch, "before": ctx.head.sha, "after": commit})
    reason = f"{branch} moved from {ctx.head.sha[:12]} to {commit[:12]}"
    run.transition(RunState.DONE, outcome=Outcome.APPLIED, reason=reason)
    return Applied(RunState.DONE, Outcome.APPLIED, branch, ctx.head.sha, commit, reason)

