"""Bad input through the whole App: refused clearly or handled correctly, never a crash, never a
write outside the data dir.

Bodies that are not JSON objects are refused at the door; signed deliveries GitHub could send but
gwi cannot use (unknown events and actions, payloads missing fields) are stored, processed and
logged without a job; enormous comments, unicode and control characters are carried through; a
repository whose tree holds a symlink out of it, or a path that climbs out of the worktree,
gets a run that ends honestly, and nothing lands outside the data dir.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.runs.verify import verify_bundle
from bot.schemas.state import Outcome, RunState
from bot.server.app import STORE
from tests.conftest import signed_headers
from tests.github_harness import Bot
from tests.support import git

BASE = {"requirements.txt": "requests==2.0.0\nflask==1.0.0\n", "README.md": "hello\n"}


async def _nothing_failed(bot: Bot) -> None:
    counts = await bot.client.app[STORE].counts()
    assert counts.deliveries["failed"] == 0 and counts.jobs["failed"] == 0, counts


@pytest.mark.parametrize(
    "body",
    [
        b'{"action": "opened", "pull_request": {"num',  # cut off
        b"action=opened&number=7",  # a form, not JSON
        b"\xff\xfe\x00{",  # not UTF-8
        b'["opened", 7]',  # JSON, not an object
        b"",
    ],
)
async def test_bodies_that_are_not_json_objects_are_refused_and_not_stored(
    make_bot: Callable[..., Any], body: bytes
) -> None:
    bot = await make_bot(BASE)
    response = await bot.client.post("/webhook", data=body,
                                     headers=signed_headers(body, "pull_request", "bad-1"))
    assert response.status == 400 and "JSON" in (await response.json())["error"]
    assert await bot.client.app[STORE].get_delivery("bad-1") is None


async def test_unusable_events_are_processed_without_a_job_or_a_failure(
    make_bot: Callable[..., Any]
) -> None:
    bot = await make_bot(BASE)
    bot.remote.commit("feature", {"requirements.txt": "requests==2.1.0\nflask==1.0.0\n"},
                      "feature", new_branch=True)
    bot.open_pull(7, "feature")
    opened = bot.pull_payload(7, "opened")
    no_head = json.loads(json.dumps(opened))
    del no_head["pull_request"]["head"]["sha"]
    comment = bot.comment_payload(7, "/gwi run")
    del comment["comment"]["body"]
    wrong_types = {**opened, "number": {"not": "a number"},
                   "pull_request": {**opened["pull_request"], "number": "seven"}}
    for event, payload in [
        ("frobnicate", {"action": "frobbed"}),  # an event GitHub may add one day
        ("pull_request", {**opened, "action": "teleported"}),  # an action gwi does not know
        ("pull_request", {k: v for k, v in opened.items() if k != "pull_request"}),
        ("pull_request", no_head),
        ("pull_request", wrong_types),
        ("pull_request", {**opened, "repository": None}),
        ("issue_comment", comment),
        ("check_run", {"action": "rerequested", "check_run": None}),
        ("installation", {"action": "created", "installation": "???", "repositories": 7}),
        ("pull_request", {"action": ["opened"], "installation": {"id": "77"}}),
    ]:
        assert await bot.deliver(event, payload) == 202
    await _nothing_failed(bot)
    assert await bot.client.app[STORE].list_jobs() == []
    assert bot.views() == [] and bot.check_runs() == [] and bot.bot_comments(7) == []


async def test_enormous_comments_and_control_characters_are_read_safely(
    make_bot: Callable[..., Any]
) -> None:
    bot = await make_bot(BASE)
    bot.remote.commit("feature", {"requirements.txt": "requests==2.1.0\nflask==1.0.0\n"},
                      "feature", new_branch=True)
    bot.open_pull(7, "feature")
    bot.fake.set_collaborator(bot.repo, "maya", "maintain")
    # 3 MB: a status command first, an approval far past the 65,536 characters read
    huge = "/gwi status\n" + ("x" * 1000 + "\n") * 3000 + "/gwi approve sha256:" + "0" * 64
    assert await bot.deliver("issue_comment", bot.comment_payload(7, huge)) == 202
    assert await bot.deliver("issue_comment", bot.comment_payload(7, "y" * 2_000_000)) == 202
    # NUL, bell, escape, a right-to-left override and a backtick in an unknown command
    hostile = "/gwi st\x00at\x07us\x1b[31m\u202e `@everyone` ünïcödé 🚀"
    assert await bot.deliver("issue_comment", bot.comment_payload(7, hostile)) == 202
    await _nothing_failed(bot)
    replies = [c.body for c in bot.bot_comments(7)]
    assert len(replies) == 2
    assert "has not run on this pull request yet" in replies[0]
    assert len(replies[0]) < 1000  # the reply does not echo the comment
    unknown = replies[1]
    assert "unknown command" in unknown
    for bad in ("\x00", "\x07", "\x1b", "\u202e", "`@everyone`"):
        assert bad not in unknown, repr(bad)
    assert [j.kind for j in await bot.client.app[STORE].list_jobs()] == ["pr.command"] * 2


async def test_unicode_in_branch_and_path_names_goes_through_to_the_push(
    make_bot: Callable[..., Any]
) -> None:
    path = "dépendances/ünïcode dir/requirements 🚀.txt"
    weird = "requirements/a\ttab, a\nnewline and an \x1b[31mescape.txt"  # git allows all three
    bot = await make_bot({**BASE, path: "requests==2.0.0\n", weird: "flask==1.0.0\n"})
    branch = "feature/ünïcödé-🚀"
    bot.remote.commit(branch, {path: "requests==2.1.0\n", weird: "flask==1.1.0\n"}, "ours",
                      new_branch=True)
    bot.remote.commit("main", {path: "requests==2.2.0\n", weird: "flask==1.2.0\n"}, "theirs")
    pull = bot.open_pull(7, branch)
    pull.title = "Ünïcode \x1b[1m title"
    bot.fake.set_collaborator(bot.repo, "maya", "maintain")
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    [view] = bot.views()
    assert view.ctx.state is RunState.AWAITING_APPROVAL, view.ctx.history[-1].reason
    assert view.ctx.head.ref == branch
    [comment] = bot.bot_comments(7)
    assert path in comment.body
    # a zero-width space after the hash is a second argument: refused, with the reason
    await bot.deliver("issue_comment", bot.comment_payload(
        7, f"/gwi approve {view.patch_hash} \u200b"))
    assert "approve takes exactly one argument" in bot.bot_comments(7)[-1].body
    assert bot.views()[0].ctx.state is RunState.AWAITING_APPROVAL
    await bot.deliver("issue_comment", bot.comment_payload(7, f"/gwi approve {view.patch_hash}"))
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.APPLIED
    tip = bot.remote.sha(f"refs/heads/{branch}")
    assert bot.remote.show(tip, path) == "requests==2.2.0"
    assert bot.remote.show(tip, weird) == "flask==1.2.0"
    assert verify_bundle(bot.runs.run_dir(view.ctx.run_id),
                         trusted_keys={bot.runs.signer.public_key_hex}).ok


def _tree_with_escape(bot: Bot, start: str, extra: dict[str, bytes], message: str) -> str:
    """A commit on ``start`` whose tree also holds ``../escape.txt`` and ``.git/hooks/post-
    checkout``: paths git itself never writes, built with plumbing as an attacker would."""
    work = bot.remote.work
    git(work, "checkout", "-q", start)
    for rel, content in extra.items():
        (work / rel).write_bytes(content)
        git(work, "add", "--", rel)
    base_tree = git(work, "write-tree").strip()
    blob = git(work, "hash-object", "-w", "--stdin",
                   input=b"#!/bin/sh\ntouch /tmp/gwi-pwned\n").strip()
    escape = git(work, "mktree", input=f"100644 blob {blob}\tescape.txt\n".encode()).strip()
    hooks = git(work, "mktree", input=f"100755 blob {blob}\tpost-checkout\n".encode()).strip()
    dotgit = git(work, "mktree", input=f"040000 tree {hooks}\thooks\n".encode()).strip()
    entries = git(work, "ls-tree", base_tree).strip()
    tree = git(work, "mktree", input=(
        entries + f"\n040000 tree {escape}\t..\n040000 tree {dotgit}\t.git\n").encode()).strip()
    commit = git(work, "commit-tree", tree, "-p", "HEAD", "-m", message).strip()
    git(work, "reset", "-q", "--hard", "HEAD")
    git(work, "push", "-q", "--force", str(bot.remote.bare), f"{commit}:refs/heads/{start}")
    return commit


def _outside_the_data_dir(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if p.relative_to(root).parts[0] != "data")


async def test_symlinks_and_paths_out_of_the_worktree_end_the_run_without_escaping(
    make_bot: Callable[..., Any], tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    bot = await make_bot({**BASE})
    work = bot.remote.work
    # PR 7: a symlink out of the repository, retargeted differently by each side
    os.symlink(outside / "target-a", work / "link")
    git(work, "add", "link")
    git(work, "commit", "-q", "-m", "a link")
    git(work, "push", "-q", str(bot.remote.bare), "main")
    git(work, "checkout", "-q", "-b", "links")
    (work / "link").unlink()
    os.symlink("../../../../../../etc/passwd", work / "link")
    git(work, "add", "link")
    bot.remote.commit("links", {"requirements.txt": "requests==2.1.0\nflask==1.0.0\n"}, "ours")
    git(work, "checkout", "-q", "main")
    (work / "link").unlink()
    os.symlink(str(outside / "target-b"), work / "link")
    git(work, "add", "link")
    bot.remote.commit("main", {"requirements.txt": "requests==2.2.0\nflask==1.0.0\n"}, "main")
    # PR 8: a tree holding ../escape.txt and .git/hooks/post-checkout, and a conflict
    git(work, "checkout", "-q", "-b", "escape", "main~1")
    _tree_with_escape(bot, "escape", {"requirements.txt": b"requests==2.1.0\nflask==1.0.0\n"},
                      "escape")
    bot.open_pull(7, "links")
    bot.open_pull(8, "escape")
    before = _outside_the_data_dir(tmp_path)

    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    await bot.deliver("pull_request", bot.pull_payload(8, "opened"))
    links, escape = sorted(bot.views(), key=lambda v: v.ctx.created_at)
    assert links.ctx.outcome is Outcome.NEEDS_HUMAN  # the version bump is settled, not the link
    assert links.resolve is not None
    statuses = {f.path: f.status.value for f in links.resolve.files}
    assert statuses == {"link": "unresolved", "requirements.txt": "resolved"}
    assert b"etc/passwd" not in (links.patch or b"")  # the link is left to a person
    assert escape.ctx.state is RunState.FAILED
    assert "invalid path '../escape.txt'" in (escape.ctx.error or "")
    for view in (links, escape):
        assert verify_bundle(bot.runs.run_dir(view.ctx.run_id)).ok
    assert {(c.status, c.conclusion) for c in bot.check_runs()} == {
        ("completed", "neutral"), ("completed", "failure")}
    await _nothing_failed(bot)
    # nothing was written outside the data dir: not through the link, not up the tree
    assert list(outside.iterdir()) == []
    assert not Path("/tmp/gwi-pwned").exists()
    assert _outside_the_data_dir(tmp_path) == before
    assert not list((tmp_path / "data").rglob("escape.txt"))
    assert not list((tmp_path / "data").rglob("post-checkout"))
