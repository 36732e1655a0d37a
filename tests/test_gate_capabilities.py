"""Capabilities: what only a verified approval unlocks stays locked without one, in the code
(one function pushes, and it checks the record) and in the tokens GitHub hands out."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.engine.approval import approval_fields, sign_approval
from bot.github.capabilities import (
    FREE,
    NEEDS_APPROVAL,
    PUSH_PERMISSIONS,
    WORK_PERMISSIONS,
    Capability,
    permissions_for,
)
from bot.github.failures import GitHubError
from bot.github.jobs import APPLY_JOB, ApplyRequest, pr_key
from bot.runs.audit import build_line
from bot.runs.signing import Signer
from bot.runs.view import RunView
from bot.schemas.approval import ApproverKind
from bot.schemas.audit import AuditAction
from bot.schemas.common import sha256_hex, utcnow
from bot.schemas.state import Outcome, RunState
from bot.server.app import STORE, WORKERS
from tests.conftest import GITHUB_INSTALLATION_ID, GITHUB_REPO, PROJECT_ROOT
from tests.gate_world import (
    BRANCH,
    PR,
    RepoBot,
    approve,
    awaiting,
    events,
    push_tokens,
    pushes,
    refusal_codes,
)

BOT = PROJECT_ROOT / "bot"


# -- the matrix -------------------------------------------------------------------------------


def test_the_matrix_splits_free_from_gated_and_tokens_follow() -> None:
    assert NEEDS_APPROVAL == {Capability.COMMIT, Capability.PUSH,
                              Capability.UPDATE_PULL_REQUEST}
    assert FREE.isdisjoint(NEEDS_APPROVAL) and FREE | NEEDS_APPROVAL == set(Capability)
    # the token every run works with can read code and report, and write no code or PR
    assert WORK_PERMISSIONS == {"checks": "write", "contents": "read", "issues": "write",
                                "metadata": "read", "pull_requests": "read"}
    for gated in NEEDS_APPROVAL:
        needed = permissions_for(frozenset({gated}))
        assert any(WORK_PERMISSIONS.get(name) != "write" for name, level in needed.items()
                   if level == "write"), gated
    assert PUSH_PERMISSIONS == {"contents": "write"}  # and nothing else: it only pushes


async def test_github_refuses_gated_work_to_the_work_token(github_app: Any,
                                                           fake_github: Any) -> None:
    """Even a bug that called the API to commit, move a branch or edit a PR with the work
    token would be refused by GitHub: the split is in the token, not only in gwi's code."""
    fake_github.add_pull(GITHUB_REPO, number=PR)
    work = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO, WORK_PERMISSIONS)
    attempts = [
        work._call("PATCH", f"/git/refs/heads/{BRANCH}", {"sha": "c" * 40, "force": False}),
        work._call("POST", "/git/commits", {"message": "m", "tree": "d" * 40}),  # commit
        work._call("PATCH", f"/pulls/{PR}", {"title": "changed"}),  # update the PR
    ]
    for attempt in attempts:
        with pytest.raises(GitHubError) as refused:
            await attempt
        assert refused.value.status == 403
    kinds = [v.detail.split(" needs ")[0] for v in fake_github.pop_violations()]
    assert kinds == ["git/update-ref", "git/create-commit", "pulls/update"]


# -- the code: one push path -------------------------------------------------------------------

#: Each name that can move a branch or hold a push token, and the only files that may use it.
GATED_NAMES = {
    "_push_with_lease": {"bot/github/handle_push.py"},
    "PUSH_PERMISSIONS": {"bot/github/capabilities.py", "bot/github/handle_push.py"},
    "update_ref_cas": {"bot/repo/plumbing.py", "bot/engine/local.py"},  # local runs, never GitHub
    "mint_once": {"bot/github/auth.py", "bot/github/handle_push.py"},  # an uncached token
}


def _names(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            found.add(node.id)
        elif isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, ast.alias | ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
    return found


def test_only_the_gate_reaches_the_push_primitives() -> None:
    uses: dict[str, set[str]] = {name: set() for name in GATED_NAMES}
    repo_clients: set[str] = set()
    git_push: set[str] = set()
    for path in sorted(BOT.rglob("*.py")):
        rel = path.relative_to(PROJECT_ROOT).as_posix()
        tree = ast.parse(path.read_text(), filename=rel)
        for name in _names(tree) & GATED_NAMES.keys():
            uses[name].add(rel)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and (
                node.func.attr == "repo" and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr == "app"
            ):
                repo_clients.add(rel)  # gh.app.repo(...): a client with a token of its own
            if isinstance(node, ast.List) and any(
                isinstance(e, ast.Constant) and e.value == "push" for e in node.elts[:1]
            ):
                git_push.add(rel)  # ["push", ...]: a git push argv
    for name, allowed in GATED_NAMES.items():
        assert uses[name] <= allowed, (name, uses[name] - allowed)
    assert repo_clients == {"bot/github/service.py"}
    assert git_push == {"bot/github/handle_push.py"}
    # and the service's client is the work token's
    service = (BOT / "github" / "service.py").read_text()
    assert "self.app.repo(installation_id, repository, WORK_PERMISSIONS)" in service


# -- the gate at run time: no valid record, no commit, no token, no push ----------------------


def forged_signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


def write_record(bot: RepoBot, view: RunView, *, signer: Signer | None = None,
                 **changes: Any) -> None:
    """An approval.json for the run, recorded in its audit log as gwi would, but signed by
    ``signer`` or naming ``changes`` (what an attacker with the disk, or a bug, could do)."""
    with bot.runs.open(view.ctx.run_id) as handle:
        assert view.resolve is not None
        fields = approval_fields(handle, view.resolve.patch_sha256, {
            "kind": ApproverKind.GITHUB_USER, "login": "maya",
            "id": bot.fake.user_id("maya"), "role": "write"}, utcnow())
        comment = bot.fake.add_comment(bot.repo, PR, approve(view), user="maya")
        record = sign_approval(signer or bot.runs.signer, {**fields, **changes, "comment": {
            "id": comment.id, "url": f"https://github.com/{bot.repo}/pull/{PR}",
            "created_at": utcnow(), "body_sha256": "0" * 64}, "delivery_id": "d-1"})
        handle.write_artifact("approval.json", record)


def plant(bot: RepoBot, run_id: str, name: str, data: bytes) -> None:
    """Put ``data`` in the run as ``name`` behind the store's back, with a log line to match."""
    folder = bot.runs.run_dir(run_id)
    (folder / name).write_bytes(data)
    chain = bot.runs.read_chain(run_id)
    last = chain.events[-1]
    line, _ = build_line(seq=last.seq + 1, ts=utcnow(), run_id=run_id, actor=last.actor,
                         action=AuditAction.ARTIFACT_WRITTEN,
                         data={"artifact": name, "sha256": sha256_hex(data), "bytes": len(data)},
                         prev=last.hash)
    with open(folder / "audit.log", "ab") as log:
        log.write(line)


async def run_apply(bot: RepoBot, view: RunView) -> None:
    """Queue the push job for the run directly, as a bug or a forged job row would."""
    store = bot.client.app[STORE]
    await store.enqueue_job(APPLY_JOB, ApplyRequest(
        repository=bot.repo, number=PR, installation_id=bot.installation,
        run_id=view.ctx.run_id).model_dump(), key=pr_key(bot.repo, PR))
    bot.client.app[WORKERS].notify_jobs()
    await bot.idle()


async def no_record(bot: RepoBot, view: RunView) -> None:
    pass


async def forged_record(bot: RepoBot, view: RunView) -> None:
    write_record(bot, view, signer=forged_signer())


async def record_for_another_head(bot: RepoBot, view: RunView) -> None:
    write_record(bot, view, head_sha="e" * 40)


async def other_runs_record(bot: RepoBot, view: RunView) -> None:
    """A valid record of another run (another pull request), copied into this one."""
    bot.remote.commit("other", {"requirements.txt": "flask==2.0.0\nrequests==2.3.0\n"},
                      "other: requests 2.3", new_branch=True, start="main~1")
    bot.open_pull(8, "other")
    await bot.deliver("pull_request", bot.pull_payload(8, "opened"))
    other = next(v for v in bot.views() if v.ctx.pull_request and v.ctx.pull_request.number == 8)
    await bot.deliver("issue_comment", bot.comment_payload(8, approve(other)))
    other = RunView.load(bot.runs, other.ctx.run_id)
    assert other.approval is not None and other.ctx.outcome is Outcome.APPLIED
    plant(bot, view.ctx.run_id, "approval.json",
          bot.runs.read_bytes(other.ctx.run_id, "approval.json") or b"")


@pytest.mark.parametrize(("prepare", "code"), [
    (no_record, "no_approval"),
    (forged_record, "bad_signature"),
    (record_for_another_head, "other_commits"),
    (other_runs_record, "other_run"),
], ids=["none", "forged", "another-head", "another-run"])
async def test_push_approved_refuses_without_a_valid_record(
    make_bot: Callable[..., Any], prepare: Callable[..., Any], code: str
) -> None:
    bot, view = await awaiting(make_bot)
    await prepare(bot, view)
    before = list(push_tokens(bot))
    await run_apply(bot, view)
    assert pushes(bot) == 0  # this PR's branch never moved
    assert push_tokens(bot) == before  # and no token that could write was minted for it
    run_events = [e.action for e in events(bot, view.ctx.run_id)]
    assert AuditAction.COMMIT_CREATED not in run_events  # not even the commit was made
    assert AuditAction.APPLY_STARTED not in run_events
    assert code in refusal_codes(bot, view.ctx.run_id)
    after = RunView.load(bot.runs, view.ctx.run_id).ctx
    assert after.state is RunState.ABORTED and after.outcome is Outcome.CANCELLED


async def test_only_the_push_holds_a_contents_write_token(make_bot: Callable[..., Any]) -> None:
    bot, view = await awaiting(make_bot)
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.APPLIED and pushes(bot) == 1
    mints = bot.fake.calls_to("apps/create-installation-access-token")
    assert all("permissions" in (m.json or {}) for m in mints)  # never the installation's all
    writers = [i for i, m in enumerate(mints) if m.json["permissions"].get("contents") == "write"]
    assert len(writers) == 1 and len(push_tokens(bot)) == 1
    # ... minted after everything was re-verified, and after nothing else
    calls = bot.fake.calls
    minted_at = calls.index(mints[writers[0]])
    last_check = max(i for i, c in enumerate(calls)
                     if c.operation_id in ("issues/get-comment",
                                           "repos/get-collaborator-permission-level"))
    assert last_check < minted_at
    # the audit log ends with the push (before and after), then the state change, signed
    trail = events(bot, view.ctx.run_id)
    order = [e.action for e in trail]
    assert order.index(AuditAction.APPROVAL_RECORDED) < order.index(AuditAction.APPLY_STARTED)
    assert order.index(AuditAction.APPLY_STARTED) < order.index(AuditAction.COMMIT_CREATED)
    pushed = order.index(AuditAction.REF_UPDATED)
    after = trail[pushed + 1:]
    assert [e.action for e in after if e.action is not AuditAction.ARTIFACT_WRITTEN] == [
        AuditAction.STATE_TRANSITION, AuditAction.AUDIT_SIGNED]
    assert all(e.data["artifact"] == "run.json" for e in after
               if e.action is AuditAction.ARTIFACT_WRITTEN)  # the seals of run.json
    assert trail[pushed].data["before"] == view.ctx.head.sha
    assert trail[pushed].data["after"] == bot.remote.sha(f"refs/heads/{BRANCH}")
