"""The push itself: forks (pushed when they allow it, handed over by hand when not, with
instructions that really work), workflow files, crashes around the push, and a run whose files
were altered."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.engine.approval import ApprovalRefused
from bot.github import handle_push as gate
from bot.github.handle_push import _push_url
from bot.github.jobs import APPLY_JOB
from bot.github.models import PullRequest
from bot.queue.records import JobRetry
from bot.runs.view import RunView
from bot.schemas.audit import AuditAction
from bot.schemas.run import CapabilityMode
from bot.schemas.state import Outcome, RunState
from bot.server.app import STORE
from tests.gate_world import (
    BASE,
    BRANCH,
    PR,
    ROLES,
    RepoBot,
    approve,
    awaiting,
    events,
    introduce,
    make_conflict,
    push_tokens,
    pushes,
    refusal_codes,
)
from tests.support import GIT_ENV, git

FORK = "fork-owner/widgets"
QUICK_RETRY = JobRetry(max_attempts=3, base_delay=0.01, max_delay=0.01)


# -- forks -------------------------------------------------------------------------------------


async def fork_pull(make_bot: Callable[..., Any], tmp_path: Path, *, edits: bool,
                    fork_url: str | None = None, **settings: Any) -> tuple[RepoBot, Path]:
    """PR 7 from ``fork-owner/widgets:feature`` into ``main``; returns the fork's bare repo."""
    made = await make_bot(BASE, **settings)
    bot = RepoBot(client=made.client, fake=made.fake, remote=made.remote, runs=made.runs)
    fork = tmp_path / "fork.git"
    git(tmp_path, "clone", "-q", "--bare", str(bot.remote.bare), str(fork))
    bot.remote.commit(BRANCH, {"requirements.txt": "flask==2.0.0\nrequests==2.1.0\n"},
                      "feature: requests 2.1", new_branch=True)
    git(bot.remote.bare, "push", "-q", str(fork), f"{BRANCH}:refs/heads/{BRANCH}")
    git(fork, "config", "core.logAllRefUpdates", "always")  # count pushes from here on
    bot.remote.commit("main", {"requirements.txt": "flask==2.0.0\nrequests==2.2.0\n"},
                      "main: requests 2.2")
    bot.fake.add_repo(FORK, clone_url=fork_url or fork.as_uri())
    bot.open_pull(PR, BRANCH, head_repo=FORK, maintainer_can_modify=edits)
    git(bot.remote.bare, "update-ref", "-d", f"refs/heads/{BRANCH}")  # it lives in the fork
    for login, role in ROLES.items():
        bot.fake.set_collaborator(bot.repo, login, role)
    await bot.deliver("pull_request", bot.pull_payload(PR, "opened"))
    return bot, fork


def fork_pushes(fork: Path) -> int:
    out = git(fork, "reflog", "show", "--format=%H", f"refs/heads/{BRANCH}").strip()
    return len(out.splitlines()) if out else 0


async def test_a_fork_without_maintainer_edits_gets_the_patch_and_instructions(
    make_bot: Callable[..., Any], tmp_path: Path
) -> None:
    bot, fork = await fork_pull(make_bot, tmp_path, edits=False)
    [view] = bot.views()
    assert view.ctx.capabilities is CapabilityMode.READ_ONLY
    assert view.ctx.state is RunState.DONE and view.ctx.outcome is Outcome.HANDED_OFF
    [check] = bot.check_runs()
    assert check.conclusion == "neutral" and "apply it by hand" in check.output["title"]
    [living] = [c.body for c in bot.bot_comments(PR) if "gwi:status" in c.body]
    assert view.patch_hash and view.patch_hash in living and "git apply" in living
    # an approval changes nothing: gwi may not write there
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    assert "not approved" in bot.bot_comments(PR)[-1].body
    assert fork_pushes(fork) == 0 and push_tokens(bot) == []
    assert git(bot.remote.bare, "for-each-ref", "refs/heads/").strip().count("refs/heads/") == 1
    assert_instructions_work(living, fork, bot.remote.bare, tmp_path / "by-hand")


def assert_instructions_work(comment: str, fork: Path, upstream: Path, where: Path) -> None:
    """Do what the comment says, exactly, in a clone of the fork: save the patch shown as
    gwi.patch, fetch the base commit, run the commands on the PR's branch. The result must be
    the merge commit of head and base with the tree the patch describes, pushed to the fork."""
    patch = re.search(r"\n(?P<fence>`{3,})diff\n(.*?)\n(?P=fence)\n", comment, re.DOTALL)
    commands = re.search(r"on the pull request's branch run:\n\n```\n(.*?)\n```", comment, re.DOTALL)
    assert patch and commands, comment
    git(where.parent, "clone", "-q", "--branch", BRANCH, str(fork), str(where))
    head = git(where, "rev-parse", "HEAD").strip()
    base = re.search(r"git merge --no-commit ([0-9a-f]{40})", commands.group(1))
    assert base
    git(where, "fetch", "-q", str(upstream), base.group(1))  # "fetch the base commit"
    (where / "gwi.patch").write_text(patch.group(2) + "\n")  # a code block's last line break
    env = {**os.environ, **GIT_ENV}
    for line in commands.group(1).splitlines():
        done = subprocess.run(["sh", "-c", line], cwd=where, env=env, capture_output=True,
                              check=False)
        expected_to_stop = line.startswith("git merge --no-commit")
        assert done.returncode == (1 if expected_to_stop else 0), (line, done.stderr)
    merged = git(where, "rev-parse", "HEAD").strip()
    assert git(where, "rev-list", "--parents", "-n", "1", merged).strip().split()[1:] == [
        head, base.group(1)]
    expected = resolved_tree(where, head, (patch.group(2) + "\n").encode())
    assert git(where, "rev-parse", f"{merged}^{{tree}}").strip() == expected
    assert git(fork, "rev-parse", f"refs/heads/{BRANCH}").strip() == merged  # and pushed
    assert git(where, "show", f"{merged}:requirements.txt").strip() == (
        "flask==2.0.0\nrequests==2.2.0")


def resolved_tree(repo: Path, head: str, patch: bytes) -> str:
    """The tree of ``head`` with ``patch`` applied, built in a scratch index."""
    env = {**os.environ, **GIT_ENV, "GIT_INDEX_FILE": str(repo / ".git" / "scratch-index")}

    def git(*args: str, data: bytes | None = None) -> str:
        return subprocess.run(["git", *args], cwd=repo, env=env, input=data,
                              capture_output=True, check=True).stdout.decode().strip()

    git("read-tree", head)
    git("apply", "--cached", "-", data=patch)
    return git("write-tree")


async def test_a_fork_that_allows_edits_is_pushed_to_its_own_clone_url(
    make_bot: Callable[..., Any], tmp_path: Path
) -> None:
    bot, fork = await fork_pull(make_bot, tmp_path, edits=True)
    [view] = bot.views()
    assert view.ctx.state is RunState.AWAITING_APPROVAL
    head = git(fork, "rev-parse", f"refs/heads/{BRANCH}").strip()
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.APPLIED, view.ctx.history[-1].reason
    assert fork_pushes(fork) == 1
    pushed = git(fork, "rev-parse", f"refs/heads/{BRANCH}").strip()
    assert git(fork, "rev-parse", f"{pushed}^1").strip() == head
    # the base repository got no branch of that name
    assert f"refs/heads/{BRANCH}" not in git(bot.remote.bare, "for-each-ref").strip()


async def test_a_fork_that_refuses_the_push_hands_the_patch_over(
    make_bot: Callable[..., Any], tmp_path: Path
) -> None:
    bot, fork = await fork_pull(make_bot, tmp_path, edits=True, job_retry=QUICK_RETRY,
                                fork_url=(tmp_path / "no-such-fork.git").as_uri())
    [view] = bot.views()
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    [view] = bot.views()
    assert view.ctx.state is RunState.DONE and view.ctx.outcome is Outcome.HANDED_OFF
    assert "fork_push_failed" in refusal_codes(bot, view.ctx.run_id)
    [living] = [c.body for c in bot.bot_comments(PR) if "gwi:status" in c.body]
    assert "git apply --index gwi.patch" in living and "could not push to the fork" in living
    assert fork_pushes(fork) == 0


def test_the_push_target_is_refused_when_gwi_may_not_write() -> None:
    def pull(head_repo: dict[str, Any] | None, edits: bool) -> PullRequest:
        return PullRequest.model_validate({
            "number": 1, "state": "open", "title": "t", "html_url": "https://github.com/o/r/1",
            "maintainer_can_modify": edits,
            "head": {"ref": "f", "sha": "a" * 40, "repo": head_repo},
            "base": {"ref": "main", "sha": "b" * 40,
                     "repo": {"id": 1, "name": "r", "full_name": "o/r"}}})

    fork = {"id": 2, "name": "r", "full_name": "x/r", "clone_url": "https://github.com/x/r.git"}
    gated = CapabilityMode.GATED_WRITE
    assert _push_url(pull(fork, True), "o/r", gated) == fork["clone_url"]
    for head_repo, edits, mode, code in [
        (None, True, gated, "head_gone"),  # the fork was deleted
        (fork, False, gated, "fork_closed"),  # it stopped allowing maintainer edits
        (fork, True, CapabilityMode.READ_ONLY, "read_only"),
    ]:
        with pytest.raises(ApprovalRefused) as refused:
            _push_url(pull(head_repo, edits), "o/r", mode)
        assert refused.value.code == code


# -- workflow files ----------------------------------------------------------------------------


async def workflow_pull(make_bot: Callable[..., Any], workflow: str,
                        permission: bool) -> tuple[RepoBot, RunView]:
    """The usual conflict, and main also adds a workflow file the merge brings in."""
    made = await make_bot(BASE)
    if permission:
        made.fake.installations[made.installation].permissions["workflows"] = "write"
    bot = RepoBot(client=made.client, fake=made.fake, remote=made.remote, runs=made.runs)
    make_conflict(bot.remote)
    bot.remote.commit("main", {".github/workflows/ci.yml": workflow}, "main: CI")
    bot.open_pull(PR, BRANCH)
    introduce(bot, None)
    await bot.deliver("pull_request", bot.pull_payload(PR, "opened"))
    [view] = bot.views()
    assert view.ctx.state is RunState.AWAITING_APPROVAL, view.ctx.history[-1].reason
    return bot, view


async def test_a_patch_touching_workflows_without_the_permission_fails_closed(
    make_bot: Callable[..., Any]
) -> None:
    # An empty file: its diff has no "+++" line, so only the trees tell that it is there.
    bot, view = await workflow_pull(make_bot, "", permission=False)
    # GitHub refusing the token is the answer gwi acts on; the fake counts that refusal as
    # a request GitHub would refuse, which here is the point.
    expected_refusal = bot.fake.pop_violations
    assert b"+++ b/.github/workflows/" not in (bot.runs.read_bytes(view.ctx.run_id,
                                                                   "patch.diff") or b"")
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    [view] = bot.views()
    assert view.ctx.state is RunState.ABORTED and view.ctx.outcome is Outcome.CANCELLED
    assert "workflows" in refusal_codes(bot, view.ctx.run_id)
    assert pushes(bot) == 0 and push_tokens(bot) == []
    [check] = bot.check_runs()
    assert "workflows permission" in check.output["summary"]
    [living] = [c.body for c in bot.bot_comments(PR) if "gwi:status" in c.body]
    assert "workflows permission" in living
    assert [m.status for m in bot.fake.calls_to("apps/create-installation-access-token")
            if "workflows" in m.json.get("permissions", {})] == [422]
    assert ["asked workflows:write" in v.detail for v in expected_refusal()] == [True]


async def test_a_patch_touching_workflows_is_pushed_with_the_permission(
    make_bot: Callable[..., Any]
) -> None:
    bot, view = await workflow_pull(make_bot, "on: push\n", permission=True)
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.APPLIED and pushes(bot) == 1
    [token] = push_tokens(bot)
    assert token.permissions == {"contents": "write", "workflows": "write",
                                 "metadata": "read"}
    assert bot.remote.show(f"refs/heads/{BRANCH}", ".github/workflows/ci.yml") == "on: push"


# -- crashes around the push -------------------------------------------------------------------


def crash_once(monkeypatch: pytest.MonkeyPatch, *, after_push: bool,
               github_sees: Callable[[str], None] | None = None) -> None:
    """Make the first push die before it starts, or right after it landed (before gwi wrote
    it down). The job is then tried again, as after a worker's death."""
    original = getattr(gate, "_push_with_lease")  # noqa: B009 -- not exported; patched
    crashed: list[bool] = []

    async def push(*args: Any, **kwargs: Any) -> None:
        if not crashed and not after_push:
            crashed.append(True)
            raise RuntimeError("worker killed between commit and push")
        await original(*args, **kwargs)
        if not crashed:
            crashed.append(True)
            if github_sees is not None:
                github_sees(kwargs["commit"])
            raise RuntimeError("worker killed between push and recording it")

    monkeypatch.setattr(gate, "_push_with_lease", push)


@pytest.mark.parametrize("case", ["before-push", "after-push", "after-push-github-knows"])
async def test_a_crash_around_the_push_pushes_once(make_bot: Callable[..., Any],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   case: str) -> None:
    bot, view = await awaiting(make_bot, job_retry=QUICK_RETRY)

    def github_sees(commit: str) -> None:  # GitHub's PR now shows gwi's commit as its head
        bot.fake.pull(bot.repo, PR).head_sha = commit

    crash_once(monkeypatch, after_push=case != "before-push",
               github_sees=github_sees if case == "after-push-github-knows" else None)
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    [view] = bot.views()
    assert view.ctx.state is RunState.DONE and view.ctx.outcome is Outcome.APPLIED
    # one push; a token for each attempt at it, minted right before it and kept by nobody
    # (when GitHub already shows the commit, the retry records the push without one)
    attempts = 1 if case == "after-push-github-knows" else 2
    assert pushes(bot) == 1 and len(push_tokens(bot)) == attempts
    actions = [e.action for e in events(bot, view.ctx.run_id)]
    assert actions.count(AuditAction.COMMIT_CREATED) == 1
    assert actions.count(AuditAction.REF_UPDATED) == 1
    assert actions.count(AuditAction.APPLY_STARTED) == 1
    [commit] = [e.data["commit"] for e in events(bot, view.ctx.run_id)
                if e.action is AuditAction.COMMIT_CREATED]
    assert bot.remote.sha(f"refs/heads/{BRANCH}") == commit
    assert bot.check_runs()[0].conclusion == "success"


# -- a run whose files were altered ------------------------------------------------------------


async def test_a_run_altered_on_disk_after_approval_stops_and_pushes_nothing(
    make_bot: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bot, view = await awaiting(make_bot, job_retry=QUICK_RETRY)
    original = gate._verified

    def tampered(gh: Any, run_id: str) -> Any:
        path = bot.runs.run_dir(run_id) / "patch.diff"
        path.write_bytes(path.read_bytes().replace(b"requests==2.2.0", b"requests==6.6.6"))
        return original(gh, run_id)

    monkeypatch.setattr(gate, "_verified", tampered)
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    assert pushes(bot) == 0 and push_tokens(bot) == []
    [check] = bot.check_runs()
    assert check.conclusion == "failure" and "altered" in check.output["title"]
    [living] = [c.body for c in bot.bot_comments(PR) if "gwi:status" in c.body]
    assert "nothing was pushed" in living
    jobs = await bot.client.app[STORE].list_jobs()
    assert all(job.attempts == 1 for job in jobs if job.kind == APPLY_JOB)
