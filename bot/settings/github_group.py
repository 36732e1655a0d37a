"""The GitHub group of the settings: the App's id, its private key and the API URL."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from bot.errors import GwiError
from bot.settings.describe import describe_error

DEFAULT_API_URL = "https://api.github.com"

ENV_APP_ID = "GITHUB_APP_ID"
ENV_PRIVATE_KEY = "GITHUB_PRIVATE_KEY"
ENV_PRIVATE_KEY_PATH = "GITHUB_PRIVATE_KEY_PATH"
ENV_API_URL = "GITHUB_API_URL"


def check_private_key(pem: str) -> None:
    """Raise ValueError (without echoing the key) unless ``pem`` is a loadable RSA private key.

    GitHub signs App JWTs with RS256 only, so any other key type is a misconfiguration that
    would otherwise surface as a 401 on the first API call.
    """
    try:
        # Parsing proves the key is usable; cryptography's extra RSA consistency check
        # costs ~50 ms per load and guards against hand-corrupted primes, which GitHub's
        # 401 would report just as well.
        key = load_pem_private_key(pem.encode(), password=None, unsafe_skip_rsa_key_validation=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            "is not a PEM private key GitHub can use (expected the .pem file GitHub "
            "generated for the App, unencrypted, starting with '-----BEGIN RSA PRIVATE KEY-----')"
        ) from exc
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(  # noqa: TRY004 -- pydantic reports ValueError, not TypeError
            "is not an RSA key; GitHub Apps sign their JWTs with RS256"
        )


class GitHubSettings(BaseModel):
    """How gwi talks to GitHub as an App. Immutable; build with :meth:`from_env` or directly.

    Secrets are ``SecretStr`` so they never show in a repr, a log line or a validation error.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    app_id: str = Field(min_length=1, description="The App's id (or client id), the JWT issuer.")
    private_key: SecretStr = Field(description="The App's PEM private key.")
    api_url: str = DEFAULT_API_URL
    user_agent: str = "gwi"

    @field_validator("app_id")
    @classmethod
    def _strip_app_id(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("private_key")
    @classmethod
    def _loadable_key(cls, value: SecretStr) -> SecretStr:
        check_private_key(value.get_secret_value())
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://api.github.com")
        return value

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> GitHubSettings | None:
        """The App's settings when any of its variables is set, else None (a local user)."""
        if not any(environ.get(name) for name in (ENV_APP_ID, ENV_PRIVATE_KEY,
                                                  ENV_PRIVATE_KEY_PATH)):
            return None
        return cls.from_env(environ)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GitHubSettings:
        """Read ``GITHUB_*`` variables; a missing or unusable value raises a readable GwiError.

        The private key comes from ``GITHUB_PRIVATE_KEY`` (the PEM text; literal ``\\n`` are
        accepted because many secret stores flatten newlines) or ``GITHUB_PRIVATE_KEY_PATH``.
        """
        app_id = environ.get(ENV_APP_ID, "").strip()
        if not app_id:
            raise GwiError(f"{ENV_APP_ID} is not set: give the GitHub App's id")
        pem = _read_private_key(environ)
        values: dict[str, object] = {"app_id": app_id, "private_key": pem}
        if environ.get(ENV_API_URL):
            values["api_url"] = environ[ENV_API_URL]
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise GwiError(describe_error(exc, _FIELD_ENV)) from None


_FIELD_ENV = {
    "app_id": ENV_APP_ID,
    "private_key": f"{ENV_PRIVATE_KEY} / {ENV_PRIVATE_KEY_PATH}",
    "api_url": ENV_API_URL,
}


def _read_private_key(environ: Mapping[str, str]) -> str:
    inline = environ.get(ENV_PRIVATE_KEY, "")
    path = environ.get(ENV_PRIVATE_KEY_PATH, "")
    if inline and path:
        raise GwiError(f"set only one of {ENV_PRIVATE_KEY} and {ENV_PRIVATE_KEY_PATH}")
    if inline:
        return inline.replace("\\n", "\n").strip() + "\n"
    if not path:
        raise GwiError(
            f"neither {ENV_PRIVATE_KEY} nor {ENV_PRIVATE_KEY_PATH} is set: "
            "give the GitHub App's private key"
        )
    try:
        return Path(path).expanduser().read_text(encoding="ascii")
    except OSError as exc:
        raise GwiError(
            f"{ENV_PRIVATE_KEY_PATH}: cannot read {path}: {exc.strerror or exc}"
        ) from None
    except UnicodeDecodeError:
        raise GwiError(f"{ENV_PRIVATE_KEY_PATH}: {path} is not a PEM text file") from None
