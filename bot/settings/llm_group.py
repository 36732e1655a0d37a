"""The LLM group of the settings: which provider the agents ask, how, and for how long."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bot.errors import GwiError
from bot.schemas.common import Name
from bot.schemas.run import AgentConfig, Provider
from bot.settings.describe import describe_error

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
            names = {**_TUNING_ENV, **_MODEL_ENV, "provider": ENV_LLM_PROVIDER}
            if key_env:
                names["api_key"] = key_env
            raise GwiError(describe_error(exc, names)) from None


_PROVIDERS = tuple(p.value for p in Provider)
#: Fields read from the environment for every provider, and only for a real one.
_TUNING_ENV: dict[str, str] = {
    "timeout": ENV_LLM_TIMEOUT,
    "max_retries": ENV_LLM_MAX_RETRIES,
    "max_output_tokens": ENV_LLM_MAX_OUTPUT_TOKENS,
    "json_mode": ENV_LLM_JSON_MODE,
}
_MODEL_ENV: dict[str, str] = {"model": ENV_LLM_MODEL, "base_url": ENV_LLM_BASE_URL}
