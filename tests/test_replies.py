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
    for _ in range(8):  # rita has the read role: she may not approve
        await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi approve sha256:12",
                                                               login="rita"))
    answered = replies(bot, "rita")
    assert sum("64 hex digits" in r for r in answered) == 5
    [notice] = [r for r in answered if "stops answering them until about" in r]
    assert "UTC" in notice
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi status", login="rita"))
    assert "awaiting_approval" in replies(bot, "rita")[-1]  # other commands still answered
    # People who may approve are never silenced, not even their refusals.
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi approve sha256:12"))
    assert "64 hex digits" in replies(bot)[-1]
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    [approved] = [r for r in replies(bot) if "pushing" in r]
    assert approved.startswith("@maya approved: pushing sha256:")
    assert approved.count("maya") == 1


async def test_a_storm_of_cheap_comments_is_capped_per_sender_and_recorded_once(
    make_bot: Callable[..., Any]
) -> None:
    """Issue 17, item 10: 120 comments made 120 reactions and 60 audit lines, and silenced
    gwi's replies on the pull request for everyone for ten minutes."""
    bot, view = await awaiting(make_bot)
    run_id = view.ctx.run_id
    before = len(bot.runs.read_chain(run_id).events)
    storm = ["/gwi approve sha256:12", "/gwi help", "/gwi frobnicate", "/gwi status"]
    for i in range(60):
        await bot.deliver("issue_comment", bot.comment_payload(PR, storm[i % 4], login="rita"))
    by_rita = {c.id for c in bot.comments(PR) if c.user == "rita"}
    reactions = [r for r in bot.fake.reactions if r.comment_id in by_rita]
    assert len(reactions) == 10  # her budget: 10 commands in 10 minutes
    added = bot.runs.read_chain(run_id).events[before:]
    refusals = [e for e in added if e.action.value == "approval_refused"]
    storms = [e for e in added if e.action.value == "note" and e.data.get("storm")]
    assert len(refusals) <= 3 and len(storms) == 1  # the storm is recorded once
    assert storms[0].data["sender"] == "rita"
    heard = replies(bot, "rita")
    assert len(heard) <= 11 and sum("gwi ignores your commands" in r for r in heard) == 1
    # Everyone else is still heard, and the approver can approve.
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi status", login="tess"))
    assert "awaiting_approval" in replies(bot, "tess")[-1]
    await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi approve sha256:12"))
    assert "64 hex digits" in replies(bot)[-1]
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    assert any(r.startswith("@maya approved: pushing sha256:") for r in replies(bot))
    # A maintainer's own burst of commands is never cut off.
    for _ in range(12):
        await bot.deliver("issue_comment", bot.comment_payload(PR, "/gwi status", login="omar"))
    assert len(replies(bot, "omar")) == 12


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
