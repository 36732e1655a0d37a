"""GitHub sign-in for the run pages: the App's user authorization (OAuth web flow) with PKCE.

``GET /login?next=PATH`` sends the browser to GitHub with a random ``state`` and a PKCE challenge,
both kept in a short-lived encrypted cookie bound to this browser; ``GET /oauth/callback`` checks
the ``state``, exchanges the code (with the verifier) for a user token, asks GitHub who the person
is, and starts a session; ``POST /logout`` ends it. ``next`` is only ever a path on this site.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlencode, urlsplit

import aiohttp
from aiohttp import web

from bot import logs
from bot.pages.access import AccessCache
from bot.pages.github_user import (
    ExchangeRefused,
    GitHubUnavailable,
    TokenRejected,
    authenticated_user,
    exchange_code,
    revoke_token,
)
from bot.pages.sessions import (
    SESSION_SECONDS,
    STATE_SECONDS,
    CookieSealer,
    Session,
    SignInState,
)
from bot.settings import PagesSettings

log = logs.get_logger("gwi.pages")


@dataclass
class PagesContext:
    """What the page handlers share: the settings, the cookie keys, the access answers, HTTP."""

    pages: PagesSettings
    sealer: CookieSealer
    access: AccessCache
    http: aiohttp.ClientSession | None = field(default=None)

    @property
    def session_cookie(self) -> str:
        # `__Host-`: the browser takes it only over HTTPS, for this host and path / alone.
        return "__Host-gwi-session" if self.pages.cookie_secure else "gwi-session"

    @property
    def state_cookie(self) -> str:
        return "__Host-gwi-signin" if self.pages.cookie_secure else "gwi-signin"

    def client(self) -> aiohttp.ClientSession:
        if self.http is None:
            raise web.HTTPServiceUnavailable(text="the server is starting\n")
        return self.http

    async def http_session(self, app: web.Application) -> AsyncIterator[None]:
        """The app's cleanup context: one HTTP client for the calls to GitHub."""
        async with aiohttp.ClientSession() as http:
            self.http = http
            yield
        self.http = None

    def session_of(self, request: web.Request) -> Session | None:
        return self.sealer.open_session(request.cookies.get(self.session_cookie))

    def set_cookie(self, response: web.StreamResponse, name: str, value: str,
                   max_age: int) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", httponly=True,
                            secure=self.pages.cookie_secure, samesite="Lax")

    def end_session(self, response: web.StreamResponse) -> None:
        self._clear(response, self.session_cookie)

    def end_sign_in(self, response: web.StreamResponse) -> None:
        self._clear(response, self.state_cookie)

    def _clear(self, response: web.StreamResponse, name: str) -> None:
        # A browser drops a `__Host-` cookie only when told so with the same attributes.
        response.del_cookie(name, path="/", secure=self.pages.cookie_secure, httponly=True,
                            samesite="Lax")


PAGES = web.AppKey("pages", PagesContext)


def safe_next(raw: str | None) -> str:
    """``raw`` when it is a path on this site, else "" (no open redirect through ``next``).

    Browsers read ``//host`` and ``/\\host`` as another site, and drop tabs and newlines from
    URLs, so any of those, a scheme, a host or a control character makes it "".
    """
    if not raw or len(raw) > 2048 or not raw.startswith("/") or raw.startswith("//"):
        return ""
    if "\\" in raw or any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        return ""
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return ""
    return raw


def login_redirect(request: web.Request) -> web.HTTPFound:
    """The answer to a request that needs a session: off to sign in, then back here."""
    return web.HTTPFound("/login?" + urlencode({"next": request.path_qs}),
                         headers={"Cache-Control": "no-store"})


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})


def _pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


async def login(request: web.Request) -> web.StreamResponse:
    """Start the sign-in: GitHub's authorize page, with a state and a PKCE challenge."""
    ctx = request.app[PAGES]
    pages = ctx.pages
    state = SignInState(state=secrets.token_urlsafe(32), verifier=secrets.token_urlsafe(64),
                        next_path=safe_next(request.query.get("next")))
    query = urlencode({
        "client_id": pages.client_id,
        "redirect_uri": pages.callback_url,
        "state": state.state,
        "code_challenge": _pkce_challenge(state.verifier),
        "code_challenge_method": "S256",
        "allow_signup": "false",
    })
    response = _redirect(f"{pages.web_url}/login/oauth/authorize?{query}")
    ctx.set_cookie(response, ctx.state_cookie, ctx.sealer.seal_state(state), STATE_SECONDS)
    return response


def _refuse(ctx: PagesContext, status: int, reason: str) -> web.Response:
    response = web.Response(status=status, text=f"Sign-in failed: {reason}\n"
                            "Start again at /login.\n", headers={"Cache-Control": "no-store"})
    ctx.end_sign_in(response)
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    """GitHub sends the browser back here with ``code`` and ``state`` (or ``error``)."""
    ctx = request.app[PAGES]
    query = request.query
    started = ctx.sealer.open_state(request.cookies.get(ctx.state_cookie))
    if "error" in query:
        log.info("signin.denied", error=query.get("error", "")[:64])
        return _refuse(ctx, 403, f"GitHub answered {query.get('error', '')[:64]!r}.")
    if started is None:
        return _refuse(ctx, 400, "the sign-in expired or was started in another browser.")
    given = query.get("state", "")
    if not hmac.compare_digest(given.encode(), started.state.encode()):
        log.warning("signin.state_mismatch", remote=request.remote)
        return _refuse(ctx, 400, "the state GitHub sent back is not the one this browser sent.")
    code = query.get("code", "")
    if not code or len(code) > 512:
        return _refuse(ctx, 400, "GitHub sent no code.")
    http = ctx.client()
    try:
        token = await exchange_code(http, ctx.pages, code=code, verifier=started.verifier)
        user = await authenticated_user(http, ctx.pages, token)
    except ExchangeRefused as exc:
        log.warning("signin.exchange_refused", error=exc.error[:64])
        return _refuse(ctx, 400, f"GitHub refused the code ({exc.error[:64]}).")
    except (GitHubUnavailable, TokenRejected) as exc:
        log.warning("signin.github_unavailable", error=str(exc)[:200])
        return _refuse(ctx, 502, "GitHub did not answer; try again in a moment.")
    session = Session(user.id, user.login, token,
                      int(ctx.sealer.now()) + SESSION_SECONDS)
    log.info("signin.ok", login=user.login)
    if started.next_path:
        response = _redirect(started.next_path)
    else:
        response = web.Response(text=f"Signed in to gwi as {user.login}. Open a run from the"
                                     " link on its pull request.\n")
    response.headers["Cache-Control"] = "no-store"
    ctx.end_sign_in(response)
    ctx.set_cookie(response, ctx.session_cookie, ctx.sealer.seal_session(session),
                   SESSION_SECONDS)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """End the session: the cookie is cleared, what was known of the user's access dropped, and
    the token revoked at GitHub, so that a copy of the cookie is worth nothing either."""
    ctx = request.app[PAGES]
    session = ctx.session_of(request)
    if session is not None:
        ctx.access.forget_user(session.user_id)
        revoked = await revoke_token(ctx.client(), ctx.pages, session.token)
        log.info("signin.logout", login=session.login, token_revoked=revoked)
    response = web.Response(text="Signed out of gwi.\n", headers={"Cache-Control": "no-store"})
    ctx.end_session(response)
    return response


def add_signin_routes(app: web.Application) -> None:
    app.router.add_get("/login", login)
    app.router.add_get("/oauth/callback", callback)
    app.router.add_post("/logout", logout)
