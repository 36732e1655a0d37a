"""The Anthropic provider: the Messages API through the official ``anthropic`` SDK."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

import anthropic
from anthropic.types import Message

from bot.agents.llm.base import (
    LlmFailure,
    LlmReply,
    SdkErrors,
    describe_sdk_error,
    reply_failure,
    system_prompt,
    truncated,
)
from bot.schemas.run import Provider
from bot.settings import JsonMode, LlmSettings

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_HOST = "api.anthropic.com"

_ERRORS = SdkErrors(
    timeout=anthropic.APITimeoutError,
    connection=anthropic.APIConnectionError,
    status=anthropic.APIStatusError,
)


def build_request(
    settings: LlmSettings,
    *,
    system: str,
    prompt: str,
    schema_name: str,
    json_schema: Mapping[str, Any],
    output_schema: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Messages API body. Anthropic has no JSON mode: the system prompt asks for JSON,
    and with ``GWI_LLM_JSON_MODE=schema`` structured output gets ``output_schema`` too.

    No assistant prefill of ``{``: newer models refuse prefilled requests.
    """
    body: dict[str, Any] = {
        "model": settings.model,
        "max_tokens": settings.max_output_tokens,
        "system": system_prompt(system, schema_name, json_schema),
        "messages": [{"role": "user", "content": prompt}],
    }
    if settings.json_mode is JsonMode.SCHEMA and output_schema is not None:
        body["output_config"] = {"format": {"type": "json_schema", "schema": dict(output_schema)}}
    return body


def reply_from_message(message: Message, settings: LlmSettings, duration_s: float) -> LlmReply:
    """The text of the reply's text blocks, unless the reply is no answer at all."""
    if message.stop_reason == "refusal":
        raise reply_failure(settings, LlmFailure.REFUSED, "the model refused to answer")
    if message.stop_reason == "max_tokens":
        raise truncated(settings)
    text = "".join(block.text for block in message.content if block.type == "text")
    if not text:
        raise reply_failure(settings, LlmFailure.EMPTY, "the reply held no text")
    return LlmReply(
        text=text,
        model=message.model,
        input_tokens=message.usage.input_tokens,
        output_tokens=message.usage.output_tokens,
        duration_s=duration_s,
    )


class AnthropicLlm:
    """`LlmClient` for Anthropic. The SDK retries timeouts, 429 and 5xx ``max_retries`` times."""

    provider = Provider.ANTHROPIC

    def __init__(self, settings: LlmSettings) -> None:
        if settings.provider is not Provider.ANTHROPIC or settings.model is None:
            raise ValueError("AnthropicLlm needs anthropic settings with a model")
        if settings.api_key is None:
            raise ValueError("AnthropicLlm needs an API key")
        self.settings = settings
        self.model = settings.model
        # Everything explicit: the SDK would otherwise read ANTHROPIC_BASE_URL and profiles.
        self._client = anthropic.Anthropic(
            api_key=settings.api_key.get_secret_value(),
            base_url=settings.base_url or DEFAULT_BASE_URL,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )

    def complete_json(
        self, *, system: str, prompt: str, schema_name: str, json_schema: Mapping[str, Any]
    ) -> LlmReply:
        output_schema = None
        if self.settings.json_mode is JsonMode.SCHEMA:
            # Structured output accepts a subset of JSON Schema; the SDK moves the rest
            # (bounds, patterns) into descriptions. pydantic still checks the full schema.
            transform = getattr(anthropic, "transform_schema", None)  # SDKs from late 2025 on
            schema = copy.deepcopy(dict(json_schema))
            output_schema = transform(schema) if transform else schema
        body = build_request(
            self.settings,
            system=system,
            prompt=prompt,
            schema_name=schema_name,
            json_schema=json_schema,
            output_schema=output_schema,
        )
        started = time.monotonic()
        try:
            message = self._client.messages.create(
                model=body.pop("model"),
                max_tokens=body.pop("max_tokens"),
                system=body.pop("system"),
                messages=body.pop("messages"),
                extra_body=body,  # output_config, sent as is whatever the SDK's version
            )
        except anthropic.AnthropicError as exc:
            raise describe_sdk_error(exc, _ERRORS, self.settings, DEFAULT_HOST) from None
        return reply_from_message(message, self.settings, time.monotonic() - started)

    def close(self) -> None:
        self._client.close()
