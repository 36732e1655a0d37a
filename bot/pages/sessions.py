"""The run pages' cookies: the signed-in session and the sign-in's short-lived state, encrypted.

Both cookies are Fernet tokens (``cryptography``, already a dependency): AES-128-CBC with an
HMAC-SHA256 over the whole token and a timestamp, so a cookie is unreadable (it carries the
user's GitHub token), any change to it is detected, and its age is checked when it is read.
Each cookie has its own key, derived from ``GWI_SESSION_SECRET`` with HKDF and the cookie's
purpose, so a sign-in state cookie can never be passed off as a session. A cookie that does not
decrypt, is too old, or does not hold what it should is treated as absent: signed out.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

#: A session lasts as long as the GitHub user token it holds (8 hours for an App's user token).
SESSION_SECONDS = 8 * 3600
#: The time a person has to sign in at GitHub before the state cookie expires.
STATE_SECONDS = 10 * 60
#: A Fernet token as `seal` writes it. Base64 decoders ignore what follows the padding, so
#: without this a cookie with bytes appended would still open: one sealed value, one cookie.
_TOKEN = re.compile(r"[A-Za-z0-9_-]+={0,2}")


@dataclass(frozen=True)
class Session:
    """Who is signed in, and the GitHub user token the access checks are asked with."""

    user_id: int
    login: str
    token: str
    expires_at: int  # Unix seconds


@dataclass(frozen=True)
class SignInState:
    """What the callback must find again: the ``state`` sent, the PKCE verifier, where to go."""

    state: str
    verifier: str
    next_path: str


def _key(secret: str, purpose: bytes) -> Fernet:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"gwi run pages",
                   info=purpose).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(derived))


class CookieSealer:
    """Seals and opens the two cookies with keys derived from the session secret."""

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        self._session = _key(secret, b"session")
        self._state = _key(secret, b"oauth state")
        self._clock = clock

    def now(self) -> float:
        """Unix seconds by the sealer's clock (tests move it)."""
        return self._clock()

    def seal_session(self, session: Session) -> str:
        payload = {"uid": session.user_id, "login": session.login, "token": session.token,
                   "exp": session.expires_at}
        return self._seal(self._session, payload)

    def open_session(self, cookie: str | None) -> Session | None:
        data = self._open(self._session, cookie, SESSION_SECONDS)
        if data is None:
            return None
        uid, login, token, exp = (data.get(k) for k in ("uid", "login", "token", "exp"))
        if not (isinstance(uid, int) and isinstance(login, str) and isinstance(token, str)
                and isinstance(exp, int)) or exp <= self._clock():
            return None
        return Session(uid, login, token, exp)

    def seal_state(self, state: SignInState) -> str:
        return self._seal(self._state, {"state": state.state, "verifier": state.verifier,
                                        "next": state.next_path})

    def open_state(self, cookie: str | None) -> SignInState | None:
        data = self._open(self._state, cookie, STATE_SECONDS)
        if data is None:
            return None
        state, verifier, next_path = (data.get(k) for k in ("state", "verifier", "next"))
        if not (isinstance(state, str) and isinstance(verifier, str)
                and isinstance(next_path, str)):
            return None
        return SignInState(state, verifier, next_path)

    def _seal(self, fernet: Fernet, payload: dict[str, Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":")).encode()
        return fernet.encrypt_at_time(raw, int(self._clock())).decode("ascii")

    def _open(self, fernet: Fernet, cookie: str | None, ttl: int) -> dict[str, Any] | None:
        if not cookie or len(cookie) > 4096 or not _TOKEN.fullmatch(cookie):
            return None
        try:
            raw = fernet.decrypt_at_time(cookie.encode("ascii"), ttl, int(self._clock()))
            data = json.loads(raw)
        except (InvalidToken, UnicodeError, ValueError):
            return None
        return data if isinstance(data, dict) else None
