"""The pages group of the settings: GitHub sign-in for the run pages, their session cookie, links.

Run pages are off unless all four of ``GITHUB_CLIENT_ID``, ``GITHUB_CLIENT_SECRET``,
``GWI_PUBLIC_URL`` and ``GWI_SESSION_SECRET`` are set; some but not all is an error naming what is
missing, because a half-configured sign-in would either fail for every visitor or leave pages off
while the operator believes them on. While they are off no link to a run page is posted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bot.errors import GwiError
from bot.settings.describe import describe_error
from bot.settings.github_group import DEFAULT_API_URL, ENV_API_URL

ENV_CLIENT_ID = "GITHUB_CLIENT_ID"
ENV_CLIENT_SECRET = "GITHUB_CLIENT_SECRET"
ENV_PUBLIC_URL = "GWI_PUBLIC_URL"
ENV_SESSION_SECRET = "GWI_SESSION_SECRET"
ENV_COOKIE_SECURE = "GWI_COOKIE_SECURE"
ENV_ACCESS_CACHE_SECONDS = "GWI_ACCESS_CACHE_SECONDS"
ENV_WEB_URL = "GITHUB_WEB_URL"

DEFAULT_WEB_URL = "https://github.com"
#: The shortest session secret accepted: it keys the cookies' encryption and signature.
MIN_SESSION_SECRET_CHARS = 32
#: The four variables that turn the pages on; all or none.
REQUIRED = (ENV_CLIENT_ID, ENV_CLIENT_SECRET, ENV_PUBLIC_URL, ENV_SESSION_SECRET)


def _http_url(value: str, example: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")) or len(value) <= len("https://"):
        raise ValueError(f"must be an http(s) URL such as {example}")
    if "?" in value or "#" in value:
        raise ValueError(f"must be a base URL without a query or fragment, such as {example}")
    return value


class PagesSettings(BaseModel):
    """Sign-in (the App's OAuth client), the session cookie, and where the pages are reached.

    Secrets are ``SecretStr``: never in a repr, a log line or a validation error.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    client_id: str = Field(min_length=1)
    client_secret: SecretStr
    public_url: str
    session_secret: SecretStr
    cookie_secure: bool = True
    access_cache_seconds: float = Field(default=120.0, ge=0, le=600)
    web_url: str = DEFAULT_WEB_URL
    api_url: str = DEFAULT_API_URL

    @field_validator("client_id")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("client_secret")
    @classmethod
    def _secret_not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("session_secret")
    @classmethod
    def _strong(cls, value: SecretStr) -> SecretStr:
        # Anyone who guesses it can forge a session for any GitHub user: refuse a weak one.
        secret = value.get_secret_value()
        if len(secret.strip()) < MIN_SESSION_SECRET_CHARS or len(set(secret)) < 8:
            raise ValueError(
                f"is too weak: it needs at least {MIN_SESSION_SECRET_CHARS} random characters"
                " (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str) -> str:
        return _http_url(value, "https://gwi.example.com")

    @field_validator("web_url")
    @classmethod
    def _web(cls, value: str) -> str:
        return _http_url(value, DEFAULT_WEB_URL)

    @field_validator("api_url")
    @classmethod
    def _api(cls, value: str) -> str:
        return _http_url(value, DEFAULT_API_URL)

    @property
    def callback_url(self) -> str:
        """Where GitHub sends the browser back; the App's callback URL must be this."""
        return f"{self.public_url}/oauth/callback"

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> PagesSettings | None:
        """The pages' settings when all four required variables are set; None when none is.

        Empty values count as unset. Some but not all of them is a GwiError naming the missing.
        """
        given = [name for name in REQUIRED if environ.get(name, "").strip()]
        if not given:
            return None
        missing = [name for name in REQUIRED if name not in given]
        if missing:
            raise GwiError(
                f"run pages are half configured: {', '.join(given)} set but {', '.join(missing)}"
                f" not; set all of {', '.join(REQUIRED)} to turn them on, or none to keep them off")
        values: dict[str, Any] = {field: environ[env] for field, env in _FIELD_ENV.items()
                                  if environ.get(env, "").strip()}
        if "cookie_secure" in values:
            values["cookie_secure"] = _boolean(values["cookie_secure"])
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise GwiError(describe_error(exc, _FIELD_ENV, echo=_ECHO)) from None


_FIELD_ENV = {
    "client_id": ENV_CLIENT_ID,
    "client_secret": ENV_CLIENT_SECRET,
    "public_url": ENV_PUBLIC_URL,
    "session_secret": ENV_SESSION_SECRET,
    "cookie_secure": ENV_COOKIE_SECURE,
    "access_cache_seconds": ENV_ACCESS_CACHE_SECONDS,
    "web_url": ENV_WEB_URL,
    # The same API as the App's (GitHub Enterprise Server has one per host): one variable.
    "api_url": ENV_API_URL,
}
_ECHO = frozenset({ENV_CLIENT_ID, ENV_PUBLIC_URL, ENV_COOKIE_SECURE, ENV_ACCESS_CACHE_SECONDS,
                   ENV_WEB_URL, ENV_API_URL})
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _boolean(raw: str) -> object:
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    return raw  # pydantic names the variable and says what it expects

