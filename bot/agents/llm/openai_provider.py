"""The OpenAI provider: Chat Completions through the official ``openai`` SDK, which also speaks
to OpenAI-compatible servers (llama.cpp, vLLM, Ollama's ``/v1``) named by ``GWI_LLM_BASE_URL``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import openai
from openai.types.chat import ChatCompletion

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

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_HOST = "api.openai.com"
#: The bearer token sent to a server of one's own that needs no key: the SDK insists on one,
#: and such servers ignore it.
NO_KEY = "no-key"

_ERRORS = SdkErrors(
    timeout=openai.APITimeoutError,
    connection=openai.APIConnectionError,
    status=openai.APIStatusError,
)


def build_request(
    settings: LlmSettings,
    *,
    system: str,
    prompt: str,
    schema_name: str,
    json_schema: Mapping[str, Any],
) -> dict[str, Any]:
    """The Chat Completions body.

    ``auto`` and ``schema`` ask for ``json_schema`` output, non-strict: strict mode accepts
    only a subset of JSON Schema, and pydantic checks the reply against the full schema anyway.
    ``object`` asks for OpenAI's JSON mode, for servers that take no schema.

    OpenAI itself wants ``max_completion_tokens`` (its reasoning models refuse ``max_tokens``);
    compatible servers all know ``max_tokens``, so that is what a custom base URL gets.
    """
    body: dict[str, Any] = {
        "model": settings.model,
        "messages": [
            {"role": "system", "content": system_prompt(system, schema_name, json_schema)},
            {"role": "user", "content": prompt},
        ],
    }
    tokens = "max_tokens" if settings.base_url else "max_completion_tokens"
    body[tokens] = settings.max_output_tokens
    if settings.json_mode in (JsonMode.AUTO, JsonMode.SCHEMA):
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": schema_name, "schema": dict(json_schema), "strict": False},
        }
    elif settings.json_mode is JsonMode.OBJECT:
        body["response_format"] = {"type": "json_object"}
    return body


def reply_from_completion(
    completion: ChatCompletion, settings: LlmSettings, duration_s: float
) -> LlmReply:
    """The first choice's content, unless the reply is no answer at all."""
    if not completion.choices:
        raise reply_failure(settings, LlmFailure.EMPTY, "the reply held no choices")
    choice = completion.choices[0]
    if choice.message.refusal:
        raise reply_failure(settings, LlmFailure.REFUSED, "the model refused to answer")
    if choice.finish_reason == "content_filter":
        raise reply_failure(settings, LlmFailure.REFUSED, "the reply was withheld by a filter")
    if choice.finish_reason == "length":
        raise truncated(settings)
    text = choice.message.content
    if not text:
        raise reply_failure(settings, LlmFailure.EMPTY, "the reply held no text")
    usage = completion.usage  # local servers may not report it
    return LlmReply(
        text=text,
        model=completion.model,
        input_tokens=usage.prompt_tokens if usage else None,
        output_tokens=usage.completion_tokens if usage else None,
        duration_s=duration_s,
    )


class OpenAiLlm:
    """`LlmClient` for OpenAI and compatible servers. The SDK retries timeouts, 429 and 5xx."""

    provider = Provider.OPENAI

    def __init__(self, settings: LlmSettings) -> None:
        if settings.provider is not Provider.OPENAI or settings.model is None:
            raise ValueError("OpenAiLlm needs openai settings with a model")
        self.settings = settings
        self.model = settings.model
        key = settings.api_key.get_secret_value() if settings.api_key else NO_KEY
        # Everything explicit: the SDK would otherwise read OPENAI_BASE_URL.
        self._client = openai.OpenAI(
            api_key=key,
            base_url=settings.base_url or DEFAULT_BASE_URL,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )

    def complete_json(
        self, *, system: str, prompt: str, schema_name: str, json_schema: Mapping[str, Any]
    ) -> LlmReply:
        body = build_request(
            self.settings,
            system=system,
            prompt=prompt,
            schema_name=schema_name,
            json_schema=json_schema,
        )
        started = time.monotonic()
        try:
            completion = self._client.chat.completions.create(
                model=body.pop("model"),
                messages=body.pop("messages"),
                extra_body=body,  # the token limit, response_format: whatever the SDK's version
            )
        except openai.OpenAIError as exc:
            raise describe_sdk_error(exc, _ERRORS, self.settings, DEFAULT_HOST) from None
        return reply_from_completion(completion, self.settings, time.monotonic() - started)

    def close(self) -> None:
        self._client.close()
