"""Settings from the environment, as frozen pydantic models passed explicitly (never globals)."""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import GwiError
from bot.schemas.common import Name
from bot.schemas.run import AgentConfig, Provider

ENV_LLM_PROVIDER = "GWI_LLM_PROVIDER"
ENV_LLM_MODEL = "GWI_LLM_MODEL"
ENV_LLM_BASE_URL = "GWI_LLM_BASE_URL"
ENV_LLM_TIMEOUT = "GWI_LLM_TIMEOUT"
ENV_LLM_MAX_RETRIES = "GWI_LLM_MAX_RETRIES"
ENV_LLM_MAX_OUTPUT_TOKENS = "GWI_LLM_MAX_OUTPUT_TOKENS"
ENV_LLM_JSON_MODE = "GWI_LLM_JSON_MODE"

#: Where each provider's API key comes from: the variables its own SDK documents.
API_KEY_ENV: dict[Provider, str] = {
    Provider.ANTHROPIC: "ANTHROPIC_API_KEY",
    Provider.OPENAI: "OPENAI_API_KEY",
}


class JsonMode(enum.StrEnum):
    """How a provider is asked for JSON. The prompt always carries the instruction and schema."""

    AUTO = "auto"  # openai: schema; anthropic: prompt
    SCHEMA = "schema"  # the API's structured output, given the JSON Schema
    OBJECT = "object"  # openai's JSON mode (any JSON object), for servers without schemas
    PROMPT = "prompt"  # nothing but the instruction in the prompt


class LlmSettings(BaseModel):
    """Which LLM the agents ask, how, and for how long. Offline (no LLM at all) by default.

    Build with `LlmSettings.from_env` (or directly, in tests). The key is a ``SecretStr``, so it
    never shows in a repr, a log line or a validation error.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    provider: Provider = Provider.OFFLINE
    model: Name | None = None
    base_url: str | None = None
    api_key: SecretStr | None = None
    timeout: float = Field(default=60.0, gt=0, le=3600, description="Seconds per attempt.")
    max_retries: int = Field(default=2, ge=0, le=10, description="The SDK's retries.")
    max_output_tokens: int = Field(default=4096, ge=1, le=1_000_000)
    json_mode: JsonMode = JsonMode.AUTO

    @field_validator("model")
    @classmethod
    def _strip_model(cls, value: str | None) -> str | None:
        value = value.strip() if value is not None else None
        return value or None

    @field_validator("api_key")
    @classmethod
    def _blank_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        value = (value or "").strip().rstrip("/")
        if not value:
            return None
        if not value.startswith(("https://", "http://")) or len(value) <= len("https://"):
            raise ValueError("must be an http(s) URL such as http://localhost:8080/v1")
        return value

    @model_validator(mode="after")
    def _complete_for_provider(self) -> LlmSettings:
        provider = self.provider.value
        if self.provider is Provider.OFFLINE:
            if self.model is not None or self.api_key is not None or self.base_url is not None:
                raise ValueError("the offline provider takes no model, key or base URL")
            return self
        if self.model is None:
            raise ValueError(
                f"{ENV_LLM_MODEL} is not set: {ENV_LLM_PROVIDER}={provider} needs a model name"
            )
        key_env = API_KEY_ENV[self.provider]
        if self.api_key is None and self.provider is Provider.ANTHROPIC:
            raise ValueError(f"{key_env} is not set: {ENV_LLM_PROVIDER}={provider} needs it")
        if self.api_key is None and self.base_url is None:
            # Only a server of one's own (GWI_LLM_BASE_URL) may do without a key.
            raise ValueError(
                f"{key_env} is not set: {ENV_LLM_PROVIDER}={provider} needs it (a local"
                f" OpenAI-compatible server named by {ENV_LLM_BASE_URL} may need none)"
            )
        if self.provider is Provider.ANTHROPIC and self.json_mode is JsonMode.OBJECT:
            raise ValueError(
                f"{ENV_LLM_JSON_MODE}=object is for openai only: Anthropic has no JSON-object"
                " mode (use schema or prompt)"
            )
        return self

    @property
    def offline(self) -> bool:
        return self.provider is Provider.OFFLINE

    @property
    def agent_config(self) -> AgentConfig:
        """What a run's context records about the agents (`RunContext.agents`)."""
        return AgentConfig(provider=self.provider, model=self.model)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LlmSettings:
        """Read ``GWI_LLM_*`` and the provider's key; a bad value is one line naming its variable.

        Empty variables count as unset. Offline reads nothing else: a model or key left in the
        environment for another provider is ignored rather than refused.
        """
        provider = environ.get(ENV_LLM_PROVIDER, "").strip().lower() or Provider.OFFLINE.value
        if provider not in _PROVIDERS:
            raise GwiError(
                f"bad setting {ENV_LLM_PROVIDER}: unknown provider {provider!r}"
                f" (use {', '.join(_PROVIDERS)})"
            )
        chosen = Provider(provider)
        fields = _TUNING_ENV if chosen is Provider.OFFLINE else {**_TUNING_ENV, **_MODEL_ENV}
        values: dict[str, Any] = {"provider": chosen}
        for field, env in fields.items():
            raw = environ.get(env, "").strip()
            if raw:
                values[field] = raw.lower() if field == "json_mode" else raw
        key_env = API_KEY_ENV.get(chosen)
        if key_env and environ.get(key_env, "").strip():
            values["api_key"] = environ[key_env].strip()
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise GwiError(_describe(exc, key_env)) from None


_PROVIDERS = tuple(p.value for p in Provider)
#: Fields read from the environment for every provider, and only for a real one.
_TUNING_ENV: dict[str, str] = {
    "timeout": ENV_LLM_TIMEOUT,
    "max_retries": ENV_LLM_MAX_RETRIES,
    "max_output_tokens": ENV_LLM_MAX_OUTPUT_TOKENS,
    "json_mode": ENV_LLM_JSON_MODE,
}
_MODEL_ENV: dict[str, str] = {"model": ENV_LLM_MODEL, "base_url": ENV_LLM_BASE_URL}


def _describe(exc: ValidationError, key_env: str | None) -> str:
    """The first problem as one line naming its variable; never the value (it may be a key)."""
    error = exc.errors(include_input=False, include_url=False)[0]
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:  # a check across fields: its message names the variables itself
        return message
    field = str(error["loc"][0])
    names = {**_TUNING_ENV, **_MODEL_ENV, "provider": ENV_LLM_PROVIDER}
    name = key_env if field == "api_key" and key_env else names.get(field, field)
    return f"bad setting {name}: {message}"


def _llm_from_environment() -> LlmSettings:
    return LlmSettings.from_env(os.environ)


MIB = 1024 * 1024
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class Settings(BaseSettings):
    """What gwi reads from the environment, once, into one frozen model passed explicitly.

    Each field is read from the environment variable named by its alias (case-sensitive). The
    webhook secret may be absent here (commands other than `gwi serve` do not need it);
    :meth:`webhook_secrets` is what insists on it. GitHub App credentials are
    `bot.github.settings.GitHubSettings`, read only by the commands that talk to GitHub.
    """

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        case_sensitive=True,
        env_ignore_empty=False,
    )

    data_dir: Path = Field(default_factory=lambda: Path.cwd() / ".gwi", alias="GWI_DATA_DIR")
    signing_key: Path | None = Field(default=None, alias="GWI_SIGNING_KEY")
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
    # Read by LlmSettings.from_env (the key's variable depends on the provider), not by
    # pydantic-settings; NoDecode keeps anything named `llm` from being parsed as JSON.
    llm: Annotated[LlmSettings, NoDecode] = Field(default_factory=_llm_from_environment)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("webhook_secret", "webhook_secret_old", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and value == "" else value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @property
    def signing_key_path(self) -> Path:
        """The Ed25519 key: ``GWI_SIGNING_KEY``, else beside (never inside) the runs folder."""
        return self.signing_key or self.data_dir / "signing-key.pem"

    def webhook_secrets(self) -> tuple[str, ...]:
        """The secrets a delivery's signature may match, newest first; at least one.

        Raises :class:`GwiError` when ``GITHUB_WEBHOOK_SECRET`` is not set, because a
        server that cannot check signatures must not start.
        """
        if self.webhook_secret is None:
            raise GwiError(
                "GITHUB_WEBHOOK_SECRET is not set: it must hold the App's webhook secret"
            )
        secrets = [self.webhook_secret.get_secret_value()]
        if self.webhook_secret_old is not None:
            secrets.append(self.webhook_secret_old.get_secret_value())
        return tuple(secrets)


_SECRET_ALIASES = frozenset({"GITHUB_WEBHOOK_SECRET", "GITHUB_WEBHOOK_SECRET_OLD"})


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read :class:`Settings` from the environment (``overrides`` win, keyed by alias).

    A bad value becomes one :class:`GwiError` line naming the variable, never a traceback,
    and never echoing a secret.
    """
    try:
        return Settings(**dict(overrides or {}))
    except ValidationError as exc:
        raise GwiError(describe_error(exc)) from None


def describe_error(exc: ValidationError) -> str:
    """One line for the first problem: the variable's name, what is wrong, what was given."""
    error = exc.errors(include_url=False)[0]
    name = ".".join(str(part) for part in error["loc"]) or "settings"
    line = f"bad setting {name}: {error['msg']}"
    if name not in _SECRET_ALIASES and isinstance(error.get("input"), str | int | float):
        line += f" (got {error['input']!r})"
    return line
