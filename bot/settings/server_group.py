"""The web process's group of the settings: where it listens, its webhook secrets, its workers."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import GwiError

MIB = 1024 * 1024
#: The shortest webhook secret `gwi serve` accepts.
MIN_SECRET_CHARS = 16
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class ServerSettings(BaseSettings):
    """What `gwi serve` reads: each field from the variable named by its alias (case-sensitive).

    The webhook secret may be absent here (commands other than `gwi serve` do not need it);
    :meth:`webhook_secrets` is what insists on it.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        case_sensitive=True,
        env_ignore_empty=False,
    )

    port: int = Field(default=8080, alias="PORT", ge=0, le=65535)
    host: str = Field(default="0.0.0.0", alias="GWI_HOST", min_length=1)
    webhook_secret: SecretStr | None = Field(default=None, alias="GITHUB_WEBHOOK_SECRET")
    # During a rotation GitHub is sent the new secret while deliveries signed with the old
    # one may still be in flight or be redelivered: both are accepted until this is unset.
    webhook_secret_old: SecretStr | None = Field(default=None, alias="GITHUB_WEBHOOK_SECRET_OLD")
    workers: int = Field(default=2, alias="GWI_WORKERS", ge=1, le=64)
    log_level: LogLevel = Field(default="INFO", alias="GWI_LOG_LEVEL")
    max_body_bytes: int = Field(default=25 * MIB, alias="GWI_MAX_BODY_BYTES", ge=1024)
    # A worker renews its lease every third of this while it works; after a crash, what it
    # held is taken up again once the lease has run out.
    lease_seconds: float = Field(default=60.0, alias="GWI_LEASE_SECONDS", ge=0.5, le=3600)
    # How long a webhook request waits for the queue database before answering 503: under
    # GitHub's 10 s, so GitHub records a failure (and recovery asks again), not a timeout.
    intake_timeout: float = Field(default=5.0, alias="GWI_INTAKE_TIMEOUT", gt=0, le=9)
    # Accounts (users or organisations) whose installations are served; empty: every one.
    allowed_owners: Annotated[frozenset[str], NoDecode] = Field(
        default=frozenset(), alias="GWI_ALLOWED_OWNERS")
    # When set, GET /metrics asks for "Authorization: Bearer <token>".
    metrics_token: SecretStr | None = Field(default=None, alias="GWI_METRICS_TOKEN")
    # postgresql://...: the queue, the PR index and the redelivery ledger live in PostgreSQL,
    # shared by every process that is given the same URL (docs/scaling.md); unset: SQLite in
    # the data folder. A secret: it may hold a password.
    database_url: SecretStr | None = Field(default=None, alias="GWI_DATABASE_URL")

    @field_validator("database_url", mode="before")
    @classmethod
    def _postgres_url(cls, value: object) -> object:
        if isinstance(value, str):
            if value == "":
                return None
            if not value.startswith(("postgresql://", "postgres://")):
                raise ValueError("must be a PostgreSQL URL (postgresql://user:password@host/db)")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("allowed_owners", mode="before")
    @classmethod
    def _owner_list(cls, value: object) -> object:
        if isinstance(value, str):  # "octo-org, someone": GitHub logins ignore case
            return frozenset(v.strip().lower() for v in value.split(",") if v.strip())
        return value

    @field_validator("webhook_secret", "webhook_secret_old", "metrics_token", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and value == "" else value

    def webhook_secrets(self) -> tuple[str, ...]:
        """The secrets a delivery's signature may match, newest first; at least one.

        Raises :class:`GwiError` when ``GITHUB_WEBHOOK_SECRET`` is not set, because a
        server that cannot check signatures must not start.
        """
        if self.webhook_secret is None:
            raise GwiError(
                "GITHUB_WEBHOOK_SECRET is not set: it must hold the App's webhook secret"
            )
        secrets = [("GITHUB_WEBHOOK_SECRET", self.webhook_secret.get_secret_value())]
        if self.webhook_secret_old is not None:
            secrets.append(("GITHUB_WEBHOOK_SECRET_OLD", self.webhook_secret_old.get_secret_value()))
        for name, secret in secrets:
            # A short or blank secret can be guessed, and anyone who guesses it can sign
            # deliveries: the server refuses to start on one (the value is never shown).
            if len(secret.strip()) < MIN_SECRET_CHARS:
                raise GwiError(f"{name} is too weak: it needs at least {MIN_SECRET_CHARS}"
                               " characters that are not all spaces (GitHub accepts a long"
                               " random secret, e.g. `openssl rand -hex 32`)")
        return tuple(secret for _, secret in secrets)
