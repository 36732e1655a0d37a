"""What the approver sees on GitHub itself (issue 13): the living comment shows the regions gwi
decided with their explanations, the whole patch when it fits and, when it does not, says so and
links the run page, never a patch cut short above an approve line; the check-run's details_url
is the run page."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.gate_world import BRANCH, PR, RepoBot, approve, awaiting_view, introduce, make_conflict

PAGES = {"GITHUB_CLIENT_ID": "Iv1.testclient", "GITHUB_CLIENT_SECRET": "s" * 40,
         "GWI_PUBLIC_URL": "https://gwi.example.org",
         "GWI_SESSION_SECRET": "k3J9x-session-secret-for-tests-0123456789"}
#: Nearly 60 kB the base branch brought in: the patch runs from the head to the merge result.
BIG = {"data/table.csv": "".join(f"{n},{n * n},row {n} of the table\n" for n in range(2400))}


async def _awaiting(make_bot: Callable[..., Any], *, big: bool = False,
                    **settings: Any) -> tuple[RepoBot, Any]:
    made = await make_bot({"requirements.txt": "flask==2.0.0\nrequests==2.0.0\n",
                           "README.md": "hello\n"}, **settings)
    bot = RepoBot(client=made.client, fake=made.fake, remote=made.remote, runs=made.runs)
    make_conflict(bot.remote)
    if big:
        bot.remote.commit("main", BIG, "main: the table")
    bot.open_pull(PR, BRANCH)
    introduce(bot, None)
    await bot.deliver("pull_request", bot.pull_payload(PR, "opened"))
    return bot, awaiting_view(bot)


def _living(bot: RepoBot) -> str:
    [body] = [c.body for c in bot.bot_comments(PR) if "gwi:status" in c.body]
    return body


async def test_the_comment_shows_each_region_gwi_decided_and_links_the_run_page(
        make_bot: Callable[..., Any]) -> None:
    bot, view = await _awaiting(make_bot, **PAGES)
    page = f"https://gwi.example.org/runs/{view.ctx.run_id}"
    [check] = bot.check_runs()
    assert check.details_url == page
    assert f"[The run page]({page})" in check.output["summary"]
    body = _living(bot)
    assert f"[The run page]({page})" in body
    assert view.resolve is not None
    [decided] = [f for f in view.resolve.files if f.path == "requirements.txt"]
    assert decided.region_details is not None
    [region] = decided.region_details
    assert "**What gwi decided**" in body and "**`requirements.txt`**: resolved" in body
    assert f"`{region.strategy}` (confidence {region.confidence}%): {region.explanation}" in body
    assert "region 1 as git left it, and as gwi resolved it" in body
    assert "requests==2.1.0\n||||||| base\nrequests==2.0.0\n=======\nrequests==2.2.0" in body
    assert region.resolution and region.resolution in body
    assert "The whole patch" in body and "too long" not in body
    assert approve(view) in body


async def test_a_patch_too_long_for_the_comment_is_linked_never_cut_short(
        make_bot: Callable[..., Any]) -> None:
    bot, view = await _awaiting(make_bot, big=True, **PAGES)
    assert view.patch is not None and len(view.patch) > 50_000
    page = f"https://gwi.example.org/runs/{view.ctx.run_id}"
    body = _living(bot)
    assert f"The patch ({len(view.patch)} bytes) is too long to show here" in body
    assert f"[The run page]({page}) shows all of it" in body
    assert f"[patch.diff]({page}/patch.diff)" in body
    assert "row 2399 of the table" not in body and "cut short" not in body
    assert "**What gwi decided**" in body  # the decisions still fit
    assert approve(view) in body and "after reading the whole patch" in body
    # The approval still works: the hash names the whole patch, which the page shows.
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    assert bot.views()[0].ctx.outcome is not None
    assert bot.views()[0].ctx.outcome.value == "applied"


async def test_without_run_pages_nothing_links_and_the_comment_says_where_the_patch_is(
        make_bot: Callable[..., Any]) -> None:
    bot, view = await _awaiting(make_bot, big=True)
    [check] = bot.check_runs()
    assert check.details_url is None and "/runs/" not in check.output["summary"]
    body = _living(bot)
    assert "/runs/" not in body
    assert "too long to show here" in body and "Run pages are off on this gwi" in body
    assert approve(view) in body


def test_a_fence_holds_any_text_exactly() -> None:
    """Backticks inside (a patch of Markdown, say) never end the block, and the text comes back
    exactly as CommonMark reads it."""
    from markdown_it import MarkdownIt

    from bot.github.resolution_view import fenced

    for text in ("plain\n", "````\nfour ticks\n", "a ``` b\n```\n", "`" * 9 + "\n", "no end"):
        [token] = [t for t in MarkdownIt("commonmark").parse("\n".join(fenced(text, "diff")))
                   if t.type == "fence"]
        assert token.content == (text if text.endswith("\n") else text + "\n")
