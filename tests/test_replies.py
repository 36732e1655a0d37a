"""What a maintainer hears back on the pull request: every command answered, refusals rationed
with a notice, the configured role named, and a next step when a person must finish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.gate_world import PR, approve, awaiting, replies
from tests.github_harness import Bot


async def test_ordinary_commands_are_never_silenced(make_bot: Callable[..., Any]) -> None:
    bot, _ = await awaiting(make_bot)
    for _ in range(7):
        await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi status"))
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi help"))
    answered = replies(bot)
    assert sum("awaiting_approval" in r for r in answered) == 7
    assert any("Commands (alone on a line)" in r for r in answered)


async def test_refusals_are_rationed_and_the_pause_is_said_once(
    make_bot: Callable[..., Any]
) -> None:
    bot, view = await awaiting(make_bot)
    for _ in range(8):
        await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi approve sha256:12"))
    answered = replies(bot)
    assert sum("64 hex digits" in r for r in answered) == 5
    [notice] = [r for r in answered if "stops answering them until about" in r]
    assert "UTC" in notice
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi status"))
    assert "awaiting_approval" in replies(bot)[-1]  # other commands still answered
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    [approved] = [r for r in replies(bot) if "pushing" in r]
    assert approved.startswith("@maya approved: pushing sha256:")
    assert approved.count("maya") == 1


async def test_texts_name_the_configured_role(make_bot: Callable[..., Any]) -> None:
    bot, _ = await awaiting(make_bot, config="approver_role: maintain\n")
    [comment] = [c.body for c in bot.bot_comments(PR) if "gwi:status" in c.body]
    assert "the maintain role or higher comments" in comment
    assert "write access" not in comment
    [check] = bot.check_runs()
    assert "the maintain role or higher approves" in check.output["summary"]
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi help", login="omar"))
    assert "the maintain role or higher approved" in replies(bot, "omar")[-1]


async def test_run_and_abort_are_answered(make_bot: Callable[..., Any]) -> None:
    bot, view = await awaiting(make_bot)
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi run"))
    assert "starting a new run" in replies(bot)[-1]
    old = next(c for c in bot.check_runs() if c.external_id == view.ctx.run_id)
    assert old.output["title"] == "Superseded by a newer run"  # the head did not change
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi abort"))
    assert "aborting run" in replies(bot)[-1]
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi abort"))
    assert "nothing to abort" in replies(bot)[-1] and "already aborted" in replies(bot)[-1]


async def test_a_run_left_to_a_person_says_what_to_do_next(make_bot: Callable[..., Any]) -> None:
    made: Bot = await make_bot({"app.py": "LIMIT = 10\n"})
    made.remote.commit("feature", {"app.py": "LIMIT = 20\n"}, "feature", new_branch=True)
    made.remote.commit("main", {"app.py": "LIMIT = 30\n"}, "main")
    made.open_pull(PR, "feature")
    await made.deliver("pull_request", made.pull_payload(PR, "opened"))
    [comment] = [c.body for c in made.bot_comments(PR) if "gwi:status" in c.body]
    assert "**Next step:** resolve `app.py` by hand" in comment
    assert "no LLM is configured: only provable resolutions are proposed" in comment
