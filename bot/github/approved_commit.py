"""The approved merge commit: made once per run from the approved patch, in this host's
repository cache, with the approval's time as its dates so that any host makes the same one."""

from __future__ import annotations

from pathlib import Path

from bot.errors import GwiError
from bot.repo import plumbing as git
from bot.runs.handle import RunHandle
from bot.runs.store import RunStore
from bot.schemas.approval import ApprovalRecord
from bot.schemas.audit import AuditAction
from bot.schemas.common import format_patch_hash, sha256_hex
from bot.schemas.state import RunState


def commit_once(runs: RunStore, run_id: str, record: ApprovalRecord, bot_login: str,
                repo: Path) -> str:
    """The merge commit of the approved patch, made once (found in the audit log after a
    crash), in this host's repository cache ``repo``. Its dates are the approval's, so a host
    whose cache lacks a commit another host recorded makes the very same commit again."""
    with runs.open(run_id) as handle:
        made = [e for e in handle.events if e.action is AuditAction.COMMIT_CREATED]
        if made and git.has_commit(repo, str(made[-1].data["commit"])):
            return str(made[-1].data["commit"])
        if made:  # made by another host: the same bytes give the same commit here
            again = _make_commit(handle, record, bot_login, repo, record_it=False)
            if again != made[-1].data["commit"]:
                raise GwiError(f"the commit made again here, {again[:12]}, is not the"
                               f" {str(made[-1].data['commit'])[:12]} another host recorded")
            return again
        ctx = handle.ctx
        if ctx.state is RunState.AWAITING_APPROVAL:
            handle.record(AuditAction.APPLY_STARTED, {
                "approver": record.approver.login,
                "patch": format_patch_hash(record.patch_sha256)})
            handle.transition(RunState.APPLYING, reason=f"approved by @{record.approver.login}")
        return _make_commit(handle, record, bot_login, repo)


def _make_commit(handle: RunHandle, record: ApprovalRecord, bot_login: str, repo: Path, *,
                 record_it: bool = True) -> str:
    ctx = handle.ctx
    patch = handle.read_bytes("patch.diff") or b""
    if sha256_hex(patch) != record.patch_sha256:
        raise GwiError("patch.diff no longer matches the approval")
    tree = git.apply_patch_to_tree(repo, git.tree_of(repo, ctx.head.sha), patch)
    message = (f"Merge {ctx.base.ref} into {ctx.head.ref}\n\n"
               f"Conflicts resolved by gwi run {ctx.run_id}.\n"
               f"Patch {format_patch_hash(record.patch_sha256)}, approved by"
               f" @{record.approver.login}.\n")
    email = f"{bot_login}@users.noreply.github.com"
    when = f"@{int(record.approved_at.timestamp())} +0000"  # the same commit on any host
    identity = {"GIT_AUTHOR_NAME": bot_login, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": when,
                "GIT_COMMITTER_NAME": bot_login, "GIT_COMMITTER_EMAIL": email,
                "GIT_COMMITTER_DATE": when}
    commit = git.commit_tree(repo, tree, [ctx.head.sha, ctx.base.sha], message, env=identity)
    if record_it:
        handle.record(AuditAction.COMMIT_CREATED,
                      {"commit": commit, "tree": tree, "parents": [ctx.head.sha, ctx.base.sha]})
    return commit
