"""The run page as a person uses it, in a real headless Chromium (issue 13): from the check-run's
details_url, through sign-in on the fake GitHub's OAuth pages, to a page that shows what gwi
decided, the whole of a patch over 100 kB and the audit chain verified; and a person without
access to the repository sees nothing of the run. Screenshots stay in the test's temp folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import unused_port

from tests.browser import browser  # noqa: F401 - the fixture
from tests.gate_world import BRANCH, PR, RepoBot, awaiting_view, introduce, make_conflict

SESSION_SECRET = "k3J9x-session-secret-for-tests-0123456789"
#: What the base branch brought in: over 100 kB, so the patch is too (head to merge result).
TABLE = "".join(f"{n},{n * n},row {n} of the table\n" for n in range(5000))


async def _awaiting_with_pages(make_bot: Callable[..., Any],
                               fake: Any) -> tuple[RepoBot, Any, str]:
    port = unused_port()
    public = f"http://127.0.0.1:{port}"
    made = await make_bot({"requirements.txt": "flask==2.0.0\nrequests==2.0.0\n",
                           "README.md": "hello\n"}, port=port,
                          GITHUB_CLIENT_ID=fake.oauth_client_id,
                          GITHUB_CLIENT_SECRET=fake.oauth_client_secret,
                          GWI_PUBLIC_URL=public, GWI_SESSION_SECRET=SESSION_SECRET,
                          GWI_COOKIE_SECURE="false", GITHUB_WEB_URL=fake.base_url,
                          GITHUB_API_URL=fake.base_url)
    bot = RepoBot(client=made.client, fake=made.fake, remote=made.remote, runs=made.runs)
    fake.set_oauth_client(f"{public}/oauth/callback")
    fake.repo(bot.repo).private = True
    make_conflict(bot.remote)
    bot.remote.commit("main", {"data/table.csv": TABLE}, "main: the table")
    bot.open_pull(PR, BRANCH)
    introduce(bot, None)  # maya, omar, rita, tess, contributor
    await bot.deliver("pull_request", bot.pull_payload(PR, "opened"))
    return bot, awaiting_view(bot), public


def _sign_in_on_github(driver: Any, login: str, then: str) -> None:
    """GitHub's consent page (the fake's): the person authorizes the App as ``login``, and the
    browser comes back to ``then`` (waited for: a click returns before the navigation ends)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    assert driver.title.startswith("Authorize"), driver.page_source[:500]
    driver.find_element(By.XPATH, f"//button[@value='{login}']").click()
    WebDriverWait(driver, 30).until(lambda d: d.current_url == then
                                    and d.execute_script("return document.readyState")
                                    == "complete")


async def test_an_approver_reviews_the_run_page_from_the_check_run(
        make_bot: Callable[..., Any], fake_github: Any, browser: Any,  # noqa: F811
        tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    bot, view, public = await _awaiting_with_pages(make_bot, fake_github)
    assert view.patch is not None and len(view.patch) > 100_000
    [check] = bot.check_runs()
    assert check.details_url == f"{public}/runs/{view.ctx.run_id}"
    fake_github.oauth_users[:] = ["maya", "mallory"]

    def review() -> dict[str, Any]:
        browser.get(check.details_url)  # a person clicks "Details" on the check-run
        assert "/login/oauth/authorize" in browser.current_url  # sent to sign in first
        _sign_in_on_github(browser, "maya", then=check.details_url)
        browser.save_screenshot(str(tmp_path / "run-page.png"))
        text = browser.find_element(By.TAG_NAME, "body").get_attribute("textContent")
        decided = browser.find_element(By.ID, "decided").text
        audit = browser.find_element(By.ID, "verification").text
        browser.find_element(By.XPATH, "//section[@id='patch']//details").click()
        browser.save_screenshot(str(tmp_path / "run-page-patch.png"))
        return {"text": text, "decided": decided, "audit": audit}

    seen = await asyncio.to_thread(review)
    # What gwi decided, region by region, as a person reads it on the page.
    assert "requirements.txt" in seen["decided"] and "version_bump" in seen["decided"]
    assert "requests==2.2.0" in seen["decided"]
    # The whole patch, to its last line, and its hash.
    assert "row 4999 of the table" in seen["text"] and "row 0 of the table" in seen["text"]
    assert str(view.patch_hash) in seen["text"]
    # The audit chain, verified right now.
    assert "Verified right now: yes." in seen["audit"] and "intact" in seen["audit"]
    assert (tmp_path / "run-page.png").stat().st_size > 10_000

    def someone_else() -> str:
        from selenium.webdriver.support.ui import WebDriverWait

        browser.find_element(By.ID, "sign-out").click()
        WebDriverWait(browser, 30).until(lambda d: d.current_url.endswith("/logout"))
        browser.get(check.details_url)
        # signed in, but cannot read the repository
        _sign_in_on_github(browser, "mallory", then=check.details_url)
        browser.save_screenshot(str(tmp_path / "no-access.png"))
        return str(browser.page_source)

    page = await asyncio.to_thread(someone_else)
    assert "Not found." in page
    for secret in (view.ctx.run_id, "requirements.txt", "row 1 of the table", "requests=="):
        assert secret not in page
