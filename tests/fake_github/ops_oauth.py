"""The fake's user sign-in: GitHub's OAuth web flow for an App, ``GET /user``, and what a user's
token may see.

GitHub documents the flow at docs.github.com/apps/creating-github-apps/authenticating-with-a-
github-app/generating-a-user-access-token-for-a-github-app; none of it is in the REST description
(``/login/oauth/*`` are web endpoints, and ``GET /user`` is not in the subset), so these routes
are checked here by hand against what that page documents:

- ``GET /login/oauth/authorize`` takes ``client_id`` (required), ``redirect_uri``, ``state``,
  ``code_challenge`` + ``code_challenge_method=S256`` (PKCE), ``login``, ``scope``,
  ``allow_signup``, ``prompt``. With ``oauth_login`` set (the person at the browser, already
  signed in at GitHub and having authorized the App) it redirects straight back to
  ``redirect_uri?code=...&state=...``; else it shows a page with one "Authorize" button per user
  of ``oauth_users`` (a form POSTing back here), as GitHub shows its consent page. A
  ``redirect_uri`` that is not the registered callback URL (same scheme, host and port, a path at
  or below it) is redirected to the registered URL with ``error=redirect_uri_mismatch``.
  ``oauth_deny`` sends ``error=access_denied`` back, as when the person clicks "Cancel".
- ``POST /login/oauth/access_token`` takes ``client_id``, ``client_secret``, ``code``,
  ``redirect_uri``, ``code_verifier`` (query or form body). With ``Accept: application/json`` it
  answers JSON, else ``application/x-www-form-urlencoded``, as GitHub does. Errors come with
  status 200 as ``{"error", "error_description", "error_uri"}``: ``incorrect_client_credentials``,
  ``redirect_uri_mismatch``, ``bad_verification_code`` (a code unknown, used, or over ten minutes
  old). A wrong or missing PKCE verifier is answered ``bad_verification_code`` too, with its own
  description (GitHub does not document the code it uses for that). A success is
  ``{"access_token": "ghu_...", "expires_in": 28800, "refresh_token": "ghr_...",
  "refresh_token_expires_in": 15897600, "scope": "", "token_type": "bearer"}``.
- ``GET /user`` with the user's token answers the "private-user" shape of
  docs.github.com/rest/users/users#get-the-authenticated-user (the simple-user fields of the
  description's examples, plus ``name``, ``company``, ``blog``, ``location``, ``email``, ``bio``,
  counts and dates); 401 without a valid token; 403 "Resource not accessible by integration" to
  an installation token (and a violation: gwi asked the wrong way).
- ``DELETE /applications/{client_id}/token`` (apps/delete-token, also outside the subset) revokes
  a user's token: basic auth with the client id and secret, ``{"access_token"}``, 204.

A user's token reaches a public repository, and a private one only when GitHub would let both the
person and the App see it (the person a collaborator, the App installed on it); anything else is
GitHub's 404. The token may only read: any other operation with it is a violation.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from tests.fake_github.spec import ROLE_TO_PERMISSION, Operation
from tests.fake_github.state import Answer, Call, Repo, Token

OAUTH_DOCS = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors"
USER_TOKEN_LIFETIME = timedelta(hours=8)
CODE_LIFETIME = timedelta(minutes=10)
#: What a user's token may do here: read the repository (the run pages' access check).
USER_TOKEN_OPERATIONS = frozenset({"repos/get"})


@dataclass
class OAuthCode:
    code: str
    login: str
    redirect_uri: str
    challenge: str | None
    issued_at: datetime
    used: bool = False


class OAuthOps:
    """Mixed into FakeGitHub; ``self`` is the fake."""

    def _init_oauth(self) -> None:
        self.oauth_client_id = "Iv1.fakeclientid0001"
        self.oauth_client_secret = "fake-client-secret-" + "0" * 21
        self.oauth_callback_url = ""  # the App's registered callback URL (set_oauth_client)
        self.oauth_login: str | None = None  # the person at the browser; None: the consent page
        self.oauth_users: list[str] = []
        self.oauth_deny = False
        self.oauth_codes: dict[str, OAuthCode] = {}

    def set_oauth_client(self, callback_url: str, *, client_id: str | None = None,
                         client_secret: str | None = None) -> None:
        """Register the App's callback URL (and, optionally, other client credentials)."""
        self.oauth_callback_url = callback_url
        self.oauth_client_id = client_id or self.oauth_client_id
        self.oauth_client_secret = client_secret or self.oauth_client_secret

    def sign_in_as(self, login: str | None) -> None:
        """The person whom the next visits to the authorize page belong to."""
        self.oauth_login = login
        if login is not None and login not in self.oauth_users:
            self.oauth_users.append(login)

    def revoke_access(self, full_name: str, login: str) -> None:
        """Take ``login`` off the repository's collaborators (its readers, if it is private)."""
        self.repo(full_name).collaborators.pop(login, None)

    def user_can_see(self, login: str, repo: Repo) -> bool:
        """Public: anyone. Private: a collaborator, and only where the App is installed (a
        user's token reaches what both the person and the App can)."""
        if not repo.private:
            return True
        role = repo.collaborators.get(login)
        return repo.installation_id is not None and role is not None and role != "none"

    def _oauth_routes(self, app: web.Application) -> None:
        app.router.add_get("/login/oauth/authorize", self._oauth_authorize)
        app.router.add_post("/login/oauth/authorize", self._oauth_authorize)
        app.router.add_post("/login/oauth/access_token", self._oauth_access_token)
        app.router.add_get(self.api_prefix + "/user", self._oauth_user)
        app.router.add_delete(self.api_prefix + "/applications/{client_id}/token",
                              self._oauth_delete_token)
        # A browser on the consent page asks for the site's icon, as it does on github.com.
        app.router.add_get("/favicon.ico", self._favicon)

    @staticmethod
    async def _favicon(request: web.Request) -> web.StreamResponse:
        return web.Response(status=204)

    def _record(self, request: web.Request, operation_id: str, body: Any = None) -> Call:
        call = Call(method=request.method, path=request.path, operation_id=operation_id,
                    query=dict(request.query), json=body,
                    headers={k.lower(): v for k, v in request.headers.items()})
        self.calls.append(call)
        return call

    # -- GET/POST /login/oauth/authorize ---------------------------------------------------
    async def _oauth_authorize(self, request: web.Request) -> web.StreamResponse:
        form = dict(await request.post()) if request.method == "POST" else {}
        params = {**dict(request.query), **{k: str(v) for k, v in form.items()}}
        call = self._record(request, "oauth/authorize", params)
        call.status = 302
        if params.get("client_id") != self.oauth_client_id:
            self._violate("unknown OAuth client", request, f"client_id={params.get('client_id')!r}")
            call.status = 404
            return web.Response(status=404, text="Not Found")
        state = params.get("state")
        if not state:
            self._violate("OAuth without state", request, "no state: the sign-in has no CSRF check")
        challenge, method = params.get("code_challenge"), params.get("code_challenge_method")
        if not challenge or method != "S256":
            self._violate("OAuth without PKCE", request,
                          f"code_challenge={challenge!r} method={method!r}: gwi must use S256")
        redirect_uri = params.get("redirect_uri") or self.oauth_callback_url
        if not self._callback_matches(redirect_uri):
            self._violate("OAuth redirect_uri mismatch", request, redirect_uri)
            return self._back(self.oauth_callback_url, state, error="redirect_uri_mismatch",
                              error_description="The redirect_uri MUST match the registered "
                              "callback URL for this application.")
        if self.oauth_deny:
            return self._back(redirect_uri, state, error="access_denied",
                              error_description="The user has denied your application access.")
        login = str(form.get("login") or self.oauth_login or "")
        if not login:
            call.status = 200
            return web.Response(text=self._consent_page(params), content_type="text/html")
        code = secrets.token_hex(10)
        self.oauth_codes[code] = OAuthCode(code, login, redirect_uri, challenge, self.clock())
        return self._back(redirect_uri, state, code=code)

    def _callback_matches(self, redirect_uri: str) -> bool:
        registered, given = urlsplit(self.oauth_callback_url), urlsplit(redirect_uri)
        if (given.scheme, given.netloc) != (registered.scheme, registered.netloc):
            return False
        base = registered.path.rstrip("/")
        return given.path == registered.path or given.path.startswith(base + "/")

    @staticmethod
    def _back(uri: str, state: str | None, **values: str) -> web.StreamResponse:
        query = {**values, **({"state": state} if state else {})}
        location = f"{uri}{'&' if '?' in uri else '?'}{urlencode(query)}"
        return web.Response(status=302, headers={"Location": location})

    def _consent_page(self, params: dict[str, str]) -> str:
        hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in params.items())
        buttons = "".join(
            f'<form method="post" action="/login/oauth/authorize">{hidden}'
            f'<button name="login" value="{html.escape(u)}">Authorize as {html.escape(u)}'
            "</button></form>" for u in self.oauth_users)
        return (f"<!doctype html><title>Authorize {html.escape(self.app_slug)}</title>"
                f"<h1>Authorize {html.escape(self.app_slug)}</h1>{buttons}")

    # -- POST /login/oauth/access_token ----------------------------------------------------
    async def _oauth_access_token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post() if request.content_type != "application/json" else {}
        if request.content_type == "application/json":
            form = await request.json()
        params = {**dict(request.query), **{k: str(v) for k, v in dict(form).items()}}
        call = self._record(request, "oauth/access-token",
                            {k: v for k, v in params.items() if k != "client_secret"})
        call.status = 200
        answer = self._exchange(params)
        if "json" in request.headers.get("Accept", ""):
            return web.json_response(answer)
        return web.Response(text=urlencode(answer), content_type="application/x-www-form-urlencoded")

    def _exchange(self, params: dict[str, str]) -> dict[str, Any]:
        if (params.get("client_id") != self.oauth_client_id
                or params.get("client_secret") != self.oauth_client_secret):
            return _oauth_error("incorrect_client_credentials",
                                "The client_id and/or client_secret passed are incorrect.")
        grant = self.oauth_codes.get(params.get("code", ""))
        if grant is None or grant.used or self.clock() - grant.issued_at > CODE_LIFETIME:
            return _oauth_error("bad_verification_code", "The code passed is incorrect or expired.")
        if params.get("redirect_uri", grant.redirect_uri) != grant.redirect_uri:
            return _oauth_error("redirect_uri_mismatch",
                                "The redirect_uri MUST match the registered callback URL for this"
                                " application.")
        if grant.challenge is not None:
            verifier = params.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
            if not verifier or digest.decode().rstrip("=") != grant.challenge:
                return _oauth_error("bad_verification_code",
                                    "The code_verifier does not match the code_challenge.")
        grant.used = True
        token = Token(token="ghu_" + secrets.token_hex(18), installation_id=0, repositories=None,
                      permissions={}, expires_at=self.clock() + USER_TOKEN_LIFETIME,
                      user=grant.login)
        self.tokens.append(token)
        return {"access_token": token.token, "expires_in": 28800,
                "refresh_token": "ghr_" + secrets.token_hex(30),
                "refresh_token_expires_in": 15897600, "scope": "", "token_type": "bearer"}

    # -- GET /user ---------------------------------------------------------------------------
    async def _oauth_user(self, request: web.Request) -> web.StreamResponse:
        call = self._record(request, "users/get-authenticated")
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        token = next((t for t in self.tokens if t.token == credential.strip()), None)
        if scheme.lower() not in {"token", "bearer"} or token is None:
            status, payload = 401, {"message": "Requires authentication", "documentation_url":
                                    "https://docs.github.com/rest/users/users"}
        elif token.revoked or token.expires_at <= self.clock():
            status, payload = 401, {"message": "Bad credentials"}
        elif token.user is None:
            self._violate("installation token on GET /user", request, "use the user's token")
            status, payload = 403, {"message": "Resource not accessible by integration"}
        else:
            status, payload = 200, self._private_user(token.user)
        call.status = status
        return web.json_response(payload, status=status)

    # -- DELETE /applications/{client_id}/token ---------------------------------------------
    async def _oauth_delete_token(self, request: web.Request) -> web.StreamResponse:
        """apps/delete-token (docs.github.com/rest/apps/oauth-applications#delete-an-app-token):
        basic auth with the client id and secret, ``{"access_token": ...}``; 204, else 404/422."""
        body = await request.json() if request.can_read_body else None
        call = self._record(request, "apps/delete-token", {"access_token": "(hidden)"})
        expected = "Basic " + base64.b64encode(
            f"{self.oauth_client_id}:{self.oauth_client_secret}".encode()).decode()
        if (request.match_info["client_id"] != self.oauth_client_id
                or request.headers.get("Authorization") != expected):
            self._violate("apps/delete-token without the client's basic auth", request, "")
            call.status = 404
            return web.json_response({"message": "Not Found"}, status=404)
        given = body.get("access_token") if isinstance(body, dict) else None
        token = next((t for t in self.tokens if t.token == given and t.user), None)
        if token is None:
            call.status = 422
            return web.json_response({"message": "Validation Failed"}, status=422)
        token.revoked = True
        call.status = 204
        return web.Response(status=204)

    def _private_user(self, login: str) -> dict[str, Any]:
        user = self._user(login)
        when = "2020-01-01T00:00:00Z"
        user.update(name=login.title(), company=None, blog="", location=None, email=None,
                    hireable=None, bio=None, twitter_username=None, public_repos=1,
                    public_gists=0, followers=0, following=0, created_at=when, updated_at=when,
                    private_gists=0, total_private_repos=0, owned_private_repos=0, disk_usage=0,
                    collaborators=0, two_factor_authentication=True)
        return user

    # -- what a user's token reaches (called by RequestChecks._check_scope) ----------------
    def _check_user_scope(self, op: Operation, token: Token, repo: Repo) -> None:
        assert token.user is not None
        if op.operation_id not in USER_TOKEN_OPERATIONS:
            raise Answer(403, "Resource not accessible by integration",
                         violation=f"{op.operation_id} with a user's token (it may only read)")
        if not self.user_can_see(token.user, repo):
            raise Answer(404, "Not Found")

    def user_permissions(self, login: str, repo: Repo) -> dict[str, bool]:
        """The ``permissions`` object GitHub puts in a repository answered to a user's token."""
        role = repo.collaborators.get(login)
        level = ROLE_TO_PERMISSION.get(role or "", "read")
        return {"admin": level == "admin", "maintain": role == "maintain",
                "push": level in ("write", "admin"), "triage": role in ("triage", "write",
                "maintain", "admin"), "pull": True}


def _oauth_error(error: str, description: str) -> dict[str, str]:
    anchor = error.replace("_", "-")
    return {"error": error, "error_description": description, "error_uri": f"{OAUTH_DOCS}#{anchor}"}
