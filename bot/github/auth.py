"""App authentication: the App's JWT, and installation tokens scoped to one repository, cached."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from gidgethub.apps import get_jwt
from pydantic import BaseModel, ConfigDict, SecretStr

from bot.github.failures import GitHubError
from bot.github.transport import CredentialKind, GitHubTransport
from bot.settings import GitHubSettings

log = logging.getLogger(__name__)

# gidgethub's get_jwt backdates iat by a minute for clock drift; with a nine-minute lifetime
# the JWT is good for eight. Re-signing after five leaves three minutes for slow requests.
JWT_LIFETIME = 9 * 60
JWT_REUSE = 5 * 60

# Installation tokens live one hour. Renewing five minutes early means a token handed to a
# long git fetch or a slow agent step does not die half-way through.
DEFAULT_REFRESH_MARGIN = timedelta(minutes=5)

Permissions = tuple[tuple[str, str], ...]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def normalise_permissions(permissions: Mapping[str, str] | None) -> Permissions:
    """A hashable, order-independent form of a permissions request (the cache key)."""
    return tuple(sorted((permissions or {}).items()))


class InstallationToken(BaseModel):
    """An installation access token for one repository. Its repr never shows the secret."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    token: SecretStr
    expires_at: datetime
    installation_id: int
    repository: str
    permissions: Permissions = ()

    def reveal(self) -> str:
        """The secret itself: only for an Authorization header or a git credential header."""
        return self.token.get_secret_value()

    def fresh(self, now: datetime, margin: timedelta) -> bool:
        """True while the token is good for at least ``margin`` more."""
        return now + margin < self.expires_at

    def __repr__(self) -> str:
        return (
            f"InstallationToken(installation_id={self.installation_id}, "
            f"repository={self.repository!r}, expires_at={self.expires_at.isoformat()}, "
            "token='**********')"
        )

    __str__ = __repr__


def _split_repository(repository: str) -> tuple[str, str]:
    owner, sep, name = repository.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ValueError(f"repository must be 'owner/name', not {repository!r}")
    return owner, name


class AppAuth:
    """Mints the App's credentials. One instance per process, shared by every worker.

    Tokens are cached per (installation, repository, permissions): a token for one
    repository is never handed to work on another, so a bug (or a prompt-injected agent)
    holding it can only reach the repository it is working on.
    """

    def __init__(
        self,
        settings: GitHubSettings,
        transport: GitHubTransport,
        *,
        refresh_margin: timedelta = DEFAULT_REFRESH_MARGIN,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._settings = settings
        self._transport = transport
        self._refresh_margin = refresh_margin
        self._now = now
        self._tokens: dict[tuple[int, str, Permissions], InstallationToken] = {}
        self._locks: dict[tuple[int, str, Permissions], asyncio.Lock] = {}
        self._jwt: tuple[str, float] | None = None  # (jwt, monotonic time it was signed)
        self.app_credentials = AppCredentials(self)

    def app_jwt(self) -> str:
        """A JWT signed with the App's key, re-signed every few minutes (signing is slow)."""
        now = time.monotonic()
        if self._jwt is None or now - self._jwt[1] > JWT_REUSE:
            token = get_jwt(
                app_id=self._settings.app_id,
                private_key=self._settings.private_key.get_secret_value(),
                expiration=JWT_LIFETIME,
            )
            self._jwt = (token, now)
        return self._jwt[0]

    async def installation_token(
        self,
        installation_id: int,
        repository: str,
        permissions: Mapping[str, str] | None = None,
        *,
        refused: str | None = None,
    ) -> InstallationToken:
        """A token for ``repository`` alone, minted once and reused until near its expiry.

        Concurrent callers for the same key wait on one lock, so a burst of work mints a
        single token (while a slow mint for one repository holds up no other).
        ``refused`` is a token GitHub answered 401 to: if it is still the cached one it is
        replaced; if another caller already replaced it, the replacement is returned.
        """
        _split_repository(repository)
        key = (installation_id, repository.lower(), normalise_permissions(permissions))
        async with self._locks.setdefault(key, asyncio.Lock()):
            cached = self._tokens.get(key)
            if (
                cached is not None
                and cached.fresh(self._now(), self._refresh_margin)
                and (refused is None or cached.reveal() != refused)
            ):
                return cached
            token = await self._mint(installation_id, repository, key[2])
            self._tokens[key] = token
            return token

    async def mint_once(
        self, installation_id: int, repository: str, permissions: Mapping[str, str]
    ) -> InstallationToken:
        """A new token for ``repository`` alone, kept nowhere: the caller uses it once and
        drops it (the push token, minted right before the push it is for)."""
        _split_repository(repository)
        return await self._mint(installation_id, repository, normalise_permissions(permissions))

    async def _mint(
        self, installation_id: int, repository: str, permissions: Permissions
    ) -> InstallationToken:
        _, name = _split_repository(repository)
        body: dict[str, object] = {"repositories": [name]}
        if permissions:
            body["permissions"] = dict(permissions)
        data = await self._transport.request(
            "POST",
            "/app/installations/{installation_id}/access_tokens",
            {"installation_id": installation_id},
            data=body,
            credentials=self.app_credentials,
        )
        try:
            token = InstallationToken(
                token=SecretStr(data["token"]),
                expires_at=datetime.fromisoformat(data["expires_at"]),
                installation_id=installation_id,
                repository=repository,
                permissions=normalise_permissions(data.get("permissions")),
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            raise GitHubError(
                "the access token answer lacks a token or expires_at",
                method="POST",
                path=f"/app/installations/{installation_id}/access_tokens",
            ) from None
        log.info(
            "minted installation token installation=%s repository=%s expires_at=%s",
            installation_id,
            repository,
            token.expires_at.isoformat(),
        )
        return token

    async def get_repo_installation(self, repository: str) -> int:
        """The id of the App's installation on ``owner/name`` (404: the App is not installed)."""
        owner, name = _split_repository(repository)
        data = await self._transport.request(
            "GET",
            "/repos/{owner}/{repo}/installation",
            {"owner": owner, "repo": name},
            credentials=self.app_credentials,
        )
        return int(data["id"])

    def credentials_for(
        self,
        installation_id: int,
        repository: str,
        permissions: Mapping[str, str] | None = None,
    ) -> InstallationCredentials:
        """The credential source a repository client uses for each request."""
        _split_repository(repository)
        return InstallationCredentials(self, installation_id, repository, permissions)


class AppCredentials:
    """Authenticates as the App itself (``/app/...`` endpoints). A fresh JWT every time."""

    renewable = False

    def __init__(self, auth: AppAuth) -> None:
        self._auth = auth

    async def get(self, *, refused: str | None = None) -> tuple[CredentialKind, str]:
        return "jwt", self._auth.app_jwt()


class InstallationCredentials:
    """Authenticates as one installation on one repository, through the token cache."""

    renewable = True

    def __init__(
        self,
        auth: AppAuth,
        installation_id: int,
        repository: str,
        permissions: Mapping[str, str] | None,
    ) -> None:
        self._auth = auth
        self.installation_id = installation_id
        self.repository = repository
        self.permissions = dict(permissions or {})

    async def token(self, *, refused: str | None = None) -> InstallationToken:
        return await self._auth.installation_token(
            self.installation_id, self.repository, self.permissions, refused=refused
        )

    async def get(self, *, refused: str | None = None) -> tuple[CredentialKind, str]:
        return "token", (await self.token(refused=refused)).reveal()
