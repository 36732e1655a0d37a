"""GitHub as the signed-in person sees it: the OAuth code exchange, who they are, what they can read.

These calls use the *user's* token (an App user access token, ``ghu_...``), never the App's or an
installation's: GitHub answers them with what both the person and the App can reach, which is
exactly what a run page may show them.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from bot.settings import PagesSettings

#: GitHub's REST API version these calls are written against.
API_VERSION = "2022-11-28"
USER_AGENT = "gwi"
TIMEOUT = aiohttp.ClientTimeout(total=10)


class GitHubUnavailable(Exception):
    """GitHub did not answer usefully (network, 5xx, an unexpected shape): try again later."""


class TokenRejected(Exception):
    """GitHub answered 401 to the user's token (revoked or expired): the person signs in again."""


class ExchangeRefused(Exception):
    """GitHub refused the code exchange, with its error code (``bad_verification_code``...)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description


@dataclass(frozen=True)
class GitHubUser:
    id: int
    login: str


def _api_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION, "User-Agent": USER_AGENT}


async def exchange_code(http: aiohttp.ClientSession, pages: PagesSettings, *, code: str,
                        verifier: str) -> str:
    """The user access token for an authorization ``code`` (POST /login/oauth/access_token).

    GitHub answers a refused exchange with 200 and ``{"error": ..., "error_description": ...}``
    (its documented form), so the body decides, not the status.
    """
    form = {"client_id": pages.client_id,
            "client_secret": pages.client_secret.get_secret_value(),
            "code": code, "redirect_uri": pages.callback_url, "code_verifier": verifier}
    try:
        async with http.post(f"{pages.web_url}/login/oauth/access_token", data=form,
                             headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                             timeout=TIMEOUT) as response:
            if response.status >= 500:
                raise GitHubUnavailable(f"GitHub answered {response.status} to the code exchange")
            body: Any = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise GitHubUnavailable(f"the code exchange failed: {exc or type(exc).__name__}") from None
    if not isinstance(body, dict):
        raise GitHubUnavailable("the code exchange answered something that is not an object")
    if "error" in body:
        raise ExchangeRefused(str(body["error"]), str(body.get("error_description", "")))
    token = body.get("access_token")
    if not isinstance(token, str) or not token:
        raise GitHubUnavailable("the code exchange answered no access_token")
    return token


async def authenticated_user(http: aiohttp.ClientSession, pages: PagesSettings,
                             token: str) -> GitHubUser:
    """GET /user with the user's token: who signed in."""
    status, body = await _get(http, f"{pages.api_url}/user", token)
    if status == 401:
        raise TokenRejected("GitHub did not accept the new token")
    if status != 200 or not isinstance(body, dict):
        raise GitHubUnavailable(f"GET /user answered {status}")
    uid, login = body.get("id"), body.get("login")
    if not isinstance(uid, int) or not isinstance(login, str) or not login:
        raise GitHubUnavailable("GET /user answered no id and login")
    return GitHubUser(uid, login)


async def can_read_repository(http: aiohttp.ClientSession, pages: PagesSettings, token: str,
                              full_name: str) -> bool:
    """Whether the token's person can read ``owner/name``: GET /repos/{owner}/{repo}.

    GitHub answers 404 (never 403) for a repository the person cannot see, and a user token
    reaches only repositories the App is installed on too; 200 means they can read it.
    """
    owner, _, name = full_name.partition("/")
    url = f"{pages.api_url}/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
    status, body = await _get(http, url, token)
    if status == 401:
        raise TokenRejected("GitHub no longer accepts the session's token")
    if status in (403, 404):
        return False
    if status != 200 or not isinstance(body, dict):
        raise GitHubUnavailable(f"GET /repos/{full_name} answered {status}")
    # The answer is the repository as this person sees it; its `permissions` (when GitHub
    # includes them) must still grant reading.
    permissions = body.get("permissions")
    return not (isinstance(permissions, dict) and permissions.get("pull") is False)


async def revoke_token(http: aiohttp.ClientSession, pages: PagesSettings, token: str) -> bool:
    """Ask GitHub to revoke the user's token (DELETE /applications/{client_id}/token, with the
    client id and secret as basic auth): a copy of the session cookie then opens nothing."""
    url = f"{pages.api_url}/applications/{quote(pages.client_id, safe='')}/token"
    pair = f"{pages.client_id}:{pages.client_secret.get_secret_value()}".encode()
    headers = {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii"),
               "Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION,
               "User-Agent": USER_AGENT}
    try:
        async with http.delete(url, json={"access_token": token}, headers=headers,
                               timeout=TIMEOUT) as response:
            return response.status == 204
    except (aiohttp.ClientError, TimeoutError):
        return False


async def _get(http: aiohttp.ClientSession, url: str, token: str) -> tuple[int, Any]:
    try:
        async with http.get(url, headers=_api_headers(token), timeout=TIMEOUT) as response:
            if response.status >= 500:
                raise GitHubUnavailable(f"GitHub answered {response.status}")
            if response.status != 200:
                return response.status, None
            return response.status, await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise GitHubUnavailable(f"GitHub did not answer: {exc or type(exc).__name__}") from None
