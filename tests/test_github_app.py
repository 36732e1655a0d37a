"""The GitHub App end to end: signed webhooks in, check-runs, one living comment, run bundles and
(after approval) one push out, against the fake GitHub and a real bare remote."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from bot.runs.verify import verify_bundle
from bot.schemas.state import Outcome, RunState
from bot.server.app import STORE
from tests.fake_llm import json_text

BASE = {"settings.py": "import os\n\nLIMIT = 10\nNAME = 'app'\n", "README.md": "hello\n"}


async def _conflicting_pr(make_bot: Callable[..., Any], llm: Any = None, number: int = 7,
                          **settings: Any) -> Any:
    bot = await make_bot(BASE, llm=llm, **settings)
    bot.remote.commit("feature", {"settings.py": "import os\n\nLIMIT = 20\nNAME = 'app'\n"},
                      "feature: raise the limit", new_branch=True)
    bot.remote.commit("main", {"settings.py": "import os\n\nLIMIT = 30\nNAME = 'app'\n",
                               "README.md": "hello again\n"}, "main: another limit")
    bot.open_pull(number, "feature")
    bot.fake.set_collaborator(bot.repo, "maya", "maintain")
    return bot


async def test_a_conflicting_pr_gets_a_check_run_a_comment_and_a_bundle(
    make_bot: Callable[..., Any]
) -> None:
    bot = await _conflicting_pr(make_bot)
    assert await bot.deliver("pull_request", bot.pull_payload(7, "opened")) == 202
    [view] = bot.views()
    assert view.ctx.state is RunState.DONE and view.ctx.outcome is Outcome.NEEDS_HUMAN
    assert view.ctx.pull_request and view.ctx.pull_request.number == 7
    assert view.ctx.installation_id == bot.installation
    [check] = bot.check_runs()
    statuses = [h.get("status") for h in check.history]
    assert statuses[0] == "queued" and "in_progress" in statuses
    assert check.status == "completed" and check.conclusion == "neutral"
    assert check.external_id == view.ctx.run_id and check.head_sha == view.ctx.head.sha
    [comment] = bot.bot_comments(7)
    assert "gwi:status" in comment.body and "Complexity" in comment.body
    assert "settings.py" in comment.body and "region 1: **left to you**" in comment.body
    assert "LIMIT = 20\n||||||| base\nLIMIT = 10\n=======\nLIMIT = 30" in comment.body
    assert verify_bundle(bot.runs.run_dir(view.ctx.run_id)).ok
    # the same delivery again answers 200 and starts nothing
    first = bot.sent[-1]
    assert await bot.deliver("pull_request", bot.pull_payload(7, "opened"),
                             delivery_id=first) == 200
    assert len(bot.views()) == 1 and len(bot.check_runs()) == 1


async def test_llm_resolution_then_approval_pushes_exactly_the_patch(
    make_bot: Callable[..., Any], fake_llm: Any, llm_settings_for: Callable[..., Any]
) -> None:
    fake_llm.add(json_text({"value": 0, "reasons": []}),
                 json_text({"regions": [{"region": 0, "resolution": "LIMIT = 30\n",
                                         "explanation": "main's limit", "confidence": 90}]}))
    bot = await _conflicting_pr(make_bot, llm=llm_settings_for("openai"))
    head_before = bot.remote.sha("refs/heads/feature")
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    [view] = bot.views()
    assert view.ctx.state is RunState.AWAITING_APPROVAL
    [check] = bot.check_runs()
    assert check.conclusion == "action_required"
    assert f"/gwi approve {view.patch_hash}" in check.output["summary"]
    [comment] = bot.bot_comments(7)
    assert f"/gwi approve {view.patch_hash}" in comment.body
    assert "region 1: proposed by the LLM `" in comment.body and "main's limit" in comment.body
    assert bot.remote.sha("refs/heads/feature") == head_before  # nothing pushed yet

    await bot.deliver("issue_comment", bot.comment_payload(7, f"/gwi approve {view.patch_hash}"))
    [view] = bot.views()
    assert view.ctx.state is RunState.DONE and view.ctx.outcome is Outcome.APPLIED
    new_head = bot.remote.sha("refs/heads/feature")
    assert new_head != head_before
    parents = bot.remote.sha(f"{new_head}^1"), bot.remote.sha(f"{new_head}^2")
    assert parents == (head_before, bot.remote.sha("refs/heads/main"))
    assert bot.remote.show(new_head, "settings.py") == "import os\n\nLIMIT = 30\nNAME = 'app'"
    assert view.approval is not None and view.approval.approver.login == "maya"
    assert view.approval.approver.role == "maintain"
    assert check.conclusion == "success"
    assert len(bot.bot_comments(7)) == 2  # the living comment, and the reply to the command
    living = [c for c in bot.bot_comments(7) if "gwi:status" in c.body]
    assert len(living) == 1 and "Pushed after approval by @maya" in living[0].body
    assert any(r.content == "eyes" for r in bot.fake.reactions)
    # The chain head gwi last published is kept outside the bundle: in the check-run and in
    # the queue database; the bundle verifies against it (and a copy cut back would not).
    anchor = await bot.client.app[STORE].run_index().latest_anchor(view.ctx.run_id)
    assert anchor is not None and anchor == view.anchor
    [check] = bot.check_runs()
    assert f"Audit anchor `{anchor[0]}:{anchor[1]}`" in check.output["summary"]
    report = verify_bundle(bot.runs.run_dir(view.ctx.run_id),
                           trusted_keys={bot.runs.signer.public_key_hex}, anchor=anchor)
    assert report.ok, report.problems
    tokens = [t for t in bot.fake.tokens if t.permissions.get("contents") == "write"]
    assert len(tokens) == 1  # minted once, by the gate, just before the push


async def test_a_clean_pr_succeeds_quietly(make_bot: Callable[..., Any]) -> None:
    bot = await make_bot(BASE)
    bot.remote.commit("feature", {"new.py": "x = 1\n"}, "feature", new_branch=True)
    bot.open_pull(3, "feature")
    await bot.deliver("pull_request", bot.pull_payload(3, "opened"))
    [check] = bot.check_runs()
    assert check.conclusion == "success"
    assert bot.bot_comments(3) == []
    [view] = bot.views()
    assert view.ctx.outcome is Outcome.NO_CHANGES_NEEDED


async def test_a_new_head_supersedes_the_old_run_and_close_aborts(
    make_bot: Callable[..., Any], fake_llm: Any, llm_settings_for: Callable[..., Any]
) -> None:
    fake_llm.add(json_text({"value": 0, "reasons": []}),
                 json_text({"regions": [{"region": 0, "resolution": "LIMIT = 30\n",
                                         "explanation": "main's limit", "confidence": 90}]}),
                 times=2)
    bot = await _conflicting_pr(make_bot, llm=llm_settings_for("openai"))
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    bot.push(7, {"other.py": "y = 2\n"})
    await bot.deliver("pull_request", bot.pull_payload(7, "synchronize"))
    old, new = sorted(bot.views(), key=lambda v: v.ctx.created_at)
    assert old.ctx.outcome is Outcome.SUPERSEDED
    assert new.ctx.state is RunState.AWAITING_APPROVAL
    checks = {c.external_id: c for c in bot.check_runs()}
    assert checks[old.ctx.run_id].conclusion == "cancelled"
    assert "Superseded" in checks[old.ctx.run_id].output["title"]
    assert len([c for c in bot.bot_comments(7) if "gwi:status" in c.body]) == 1
    # an old head's approval is refused
    await bot.deliver("issue_comment", bot.comment_payload(7, f"/gwi approve {old.patch_hash}"))
    newest = max(bot.views(), key=lambda v: v.ctx.created_at)
    assert newest.ctx.run_id == new.ctx.run_id and newest.ctx.state is RunState.AWAITING_APPROVAL
    assert "not the patch of this run" in bot.bot_comments(7)[-1].body
    bot.fake.pull(bot.repo, 7).state = "closed"
    await bot.deliver("pull_request", bot.pull_payload(7, "closed"))
    latest = max(bot.views(), key=lambda v: v.ctx.created_at)
    assert latest.ctx.state is RunState.ABORTED and latest.ctx.outcome is Outcome.CANCELLED
    assert checks[latest.ctx.run_id].conclusion == "cancelled"


async def test_commands_are_acknowledged_and_answered(make_bot: Callable[..., Any]) -> None:
    bot = await _conflicting_pr(make_bot)
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    await bot.deliver("issue_comment", bot.comment_payload(7, "/gwi help"))
    await bot.deliver("issue_comment", bot.comment_payload(7, "/gwi frobnicate"))
    await bot.deliver("issue_comment", bot.comment_payload(7, "please /gwi status"))  # mid-line
    await bot.deliver("issue_comment", bot.comment_payload(7, "/gwi status"))
    replies = [c.body for c in bot.bot_comments(7) if "gwi:status" not in c.body]
    assert len(replies) == 3
    assert "Commands" in replies[0] and "unknown command `/gwi frobnicate`" in replies[1]
    assert re.search(r"run `\S+` on `[0-9a-f]{12}` is \*\*done\*\*", replies[2])
    assert len(bot.fake.reactions) == 3
    # edited comments and comments by bots are ignored before parsing
    await bot.deliver("issue_comment", bot.comment_payload(7, "/gwi help", action="edited"))
    await bot.deliver("issue_comment", bot.comment_payload(7, "/gwi help",
                                                           login="other-app[bot]",
                                                           user_type="Bot"))
    assert len(bot.bot_comments(7)) == 4 and len(bot.fake.reactions) == 3


async def test_run_and_abort_need_the_role(make_bot: Callable[..., Any]) -> None:
    bot = await _conflicting_pr(make_bot)
    bot.fake.set_collaborator(bot.repo, "visitor", "read")
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    await bot.deliver("issue_comment", bot.comment_payload(7, "/gwi run", login="visitor"))
    assert len(bot.views()) == 1
    assert "needs the write role" in bot.bot_comments(7)[-1].body
    await bot.deliver("issue_comment", bot.comment_payload(7, "/gwi run", login="maya"))
    assert len(bot.views()) == 2  # a fresh run for the same head, on request


async def test_bad_repository_settings_are_reported_in_the_check_run(
    make_bot: Callable[..., Any]
) -> None:
    bot = await _conflicting_pr(make_bot)
    bot.fake.set_file(bot.repo, ".github/gwi.yml", "auto_run: [oops\n")
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    [check] = bot.check_runs()
    assert check.conclusion == "failure" and "not valid YAML" in check.output["summary"]
    assert bot.views() == []


async def test_drafts_wait_and_rerequested_checks_run_again(make_bot: Callable[..., Any]) -> None:
    bot = await _conflicting_pr(make_bot)
    bot.fake.pull(bot.repo, 7).draft = True
    await bot.deliver("pull_request", bot.pull_payload(7, "opened"))
    assert bot.views() == [] and bot.check_runs() == []
    bot.fake.pull(bot.repo, 7).draft = False
    await bot.deliver("pull_request", bot.pull_payload(7, "ready_for_review"))
    assert len(bot.views()) == 1
    [check] = bot.check_runs()
    payload = {"action": "rerequested", "repository": bot._repo_json(),
               "check_run": {"id": check.id, "name": "gwi", "head_sha": check.head_sha,
                             "external_id": check.external_id, "app": {"id": 4242},
                             "pull_requests": [{"number": 7}]},
               "sender": {"login": "maya", "id": 1, "type": "User"}}
    await bot.deliver("check_run", payload)
    assert len(bot.views()) == 2
