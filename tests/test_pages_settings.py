"""The run pages' settings: all four or none, a strong session secret, and no link while off."""

from __future__ import annotations

from typing import Any

import pytest

from bot.cli import main
from bot.errors import GwiError
from bot.settings import load_settings, pages_enabled, run_page_url

RUN_ID = "20260101T000000Z-abcdefghijklmnopqrst"
SECRET = "f3a9c1d27be84e56a0c4d9e1b7f2a6c3"
FOUR = {"GITHUB_CLIENT_ID": "Iv1.abc123", "GITHUB_CLIENT_SECRET": "client-secret-value",
        "GWI_PUBLIC_URL": "https://gwi.example.com/", "GWI_SESSION_SECRET": SECRET}


def test_pages_are_off_until_set_and_then_link_runs() -> None:
    off = load_settings()
    assert off.pages is None and not pages_enabled(off)
    assert run_page_url(off, RUN_ID) is None
    on = load_settings(FOUR)
    assert pages_enabled(on) and on.pages is not None
    assert run_page_url(on, RUN_ID) == f"https://gwi.example.com/runs/{RUN_ID}"
    assert on.pages.callback_url == "https://gwi.example.com/oauth/callback"
    assert on.pages.cookie_secure and on.pages.access_cache_seconds == 120
    assert on.pages.web_url == "https://github.com"
    assert on.pages.api_url == "https://api.github.com"
    with pytest.raises(GwiError, match="not a run id"):
        run_page_url(on, "../etc")


@pytest.mark.parametrize("missing", sorted(FOUR))
def test_a_partial_set_is_an_error_naming_what_is_missing(missing: str) -> None:
    given = {k: v for k, v in FOUR.items() if k != missing}
    with pytest.raises(GwiError, match=f"half configured: .* but {missing} not"):
        load_settings(given)


@pytest.mark.parametrize(("override", "message"), [
    ({"GWI_SESSION_SECRET": "short-secret"}, "GWI_SESSION_SECRET: is too weak"),
    ({"GWI_SESSION_SECRET": "a" * 64}, "GWI_SESSION_SECRET: is too weak"),
    ({"GWI_SESSION_SECRET": " " * 40 + "x"}, "GWI_SESSION_SECRET: is too weak"),
    ({"GWI_PUBLIC_URL": "gwi.example.com"}, "GWI_PUBLIC_URL: must be an http(s) URL"),
    ({"GWI_PUBLIC_URL": "https://gwi.example.com/?a=1"}, "GWI_PUBLIC_URL: must be a base URL"),
    ({"GWI_COOKIE_SECURE": "maybe"}, "GWI_COOKIE_SECURE"),
    ({"GWI_ACCESS_CACHE_SECONDS": "3600"}, "GWI_ACCESS_CACHE_SECONDS"),
    ({"GITHUB_WEB_URL": "github.com"}, "GITHUB_WEB_URL: must be an http(s) URL"),
])
def test_bad_values_are_one_line_naming_the_variable(override: dict[str, str],
                                                     message: str) -> None:
    with pytest.raises(GwiError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        load_settings({**FOUR, **override})
    assert SECRET not in str(err.value) and "client-secret-value" not in str(err.value)


def test_the_cookie_may_be_plain_http_for_local_use() -> None:
    pages = load_settings({**FOUR, "GWI_COOKIE_SECURE": "false",
                           "GWI_ACCESS_CACHE_SECONDS": "0",
                           "GITHUB_WEB_URL": "https://ghe.example.com/",
                           "GITHUB_API_URL": "https://ghe.example.com/api/v3"}).pages
    assert pages is not None and not pages.cookie_secure and pages.access_cache_seconds == 0
    assert pages.web_url == "https://ghe.example.com"
    assert pages.api_url == "https://ghe.example.com/api/v3"
    assert SECRET not in repr(pages)


def test_config_check_says_whether_pages_are_on(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check"]) == 0
    assert "run pages: off" in capsys.readouterr().out
    env: dict[str, Any] = dict(FOUR)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(["config", "check"]) == 0
    assert "run pages: at https://gwi.example.com/runs/" in capsys.readouterr().out
    monkeypatch.delenv("GWI_SESSION_SECRET")
    assert main(["config", "check"]) == 2
    assert "GWI_SESSION_SECRET not" in capsys.readouterr().out
