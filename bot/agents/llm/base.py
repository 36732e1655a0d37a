"""The one LLM provider interface: ask for JSON, get the model's raw text back or an `LlmError`.

The contract of `LlmClient.complete_json` is *the raw text of the model's reply*. Nothing here
repairs it, strips a Markdown fence from it, scrapes JSON out of it or validates it: the caller
validates it against the step's pydantic schema (`RunHandle.accept`), and output that does not
validate fails the run. What this layer does refuse, as `LlmError`, is a reply that is not an
answer at all: a transport failure, a timeout, an HTTP error after the SDK's bounded retries, a
refusal, a reply cut off at the output limit, or an empty one.

Calls are synchronous (the pipeline runs in worker threads) and a client may be shared between
threads. The SDKs are imported only when their provider is chosen (`make_llm`).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from bot.errors import GwiError
from bot.schemas.run import Provider
from bot.settings.llm_group import (
    API_KEY_ENV,
    ENV_LLM_BASE_URL,
    ENV_LLM_MAX_OUTPUT_TOKENS,
    ENV_LLM_MODEL,
    LlmSettings,
)

#: What a schema may be called: the rule OpenAI sets for ``response_format`` names.
SCHEMA_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: How much of an API's own error message a reason quotes.
DETAIL_CHARS = 200
#: What stands in for the API key wherever an API's message quotes it.
REDACTED = "[redacted]"



class LlmFailure(enum.StrEnum):
    """Why a call produced no reply, for callers that treat some causes differently."""

    MISSING_SDK = "missing_sdk"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    AUTH = "auth"
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    REFUSED = "refused"
    TRUNCATED = "truncated"
    EMPTY = "empty"
    OTHER = "other"


class LlmError(GwiError):
    """The provider gave no usable reply; the message says why, for a person, without the key."""

    def __init__(self, message: str, *, failure: LlmFailure, status: int | None = None) -> None:
        super().__init__(message)
        self.failure = failure
        self.status = status


@dataclass(frozen=True)
class LlmReply:
    """The model's reply: its raw text, unvalidated, and what it cost."""

    text: str
    model: str  # the model that answered, as the API named it
    input_tokens: int | None  # None when the server does not report usage
    output_tokens: int | None
    duration_s: float  # the whole call, retries included


class LlmClient(Protocol):
    """A configured provider. `make_llm` builds one; tests point one at `tests.fake_llm`."""

    @property
    def provider(self) -> Provider: ...

    @property
    def model(self) -> str: ...

    def complete_json(
        self, *, system: str, prompt: str, schema_name: str, json_schema: Mapping[str, Any]
    ) -> LlmReply:
        """Ask for one JSON object matching ``json_schema``; return the reply's raw text."""
        ...

    def close(self) -> None:
        """Release the HTTP connections."""
        ...




# -- the prompt ------------------------------------------------------------------------------------


def check_schema_name(schema_name: str) -> None:
    if not SCHEMA_NAME_RE.match(schema_name):
        raise ValueError(f"schema name {schema_name!r} must match {SCHEMA_NAME_RE.pattern}")


def json_instruction(schema_name: str, json_schema: Mapping[str, Any]) -> str:
    """What every provider is told about the answer's form, whatever else the API enforces."""
    schema = json.dumps(json_schema, separators=(",", ":"), ensure_ascii=False)
    return (
        "Answer with exactly one JSON object and nothing else: no text before or after it and"
        f" no Markdown code fence. The object must validate against the JSON Schema named"
        f" {schema_name} below; anything else is rejected as it stands, never repaired.\n"
        f"JSON Schema {schema_name}: {schema}"
    )


def system_prompt(system: str, schema_name: str, json_schema: Mapping[str, Any]) -> str:
    """The caller's system prompt, then the JSON instruction."""
    check_schema_name(schema_name)
    instruction = json_instruction(schema_name, json_schema)
    return f"{system.rstrip()}\n\n{instruction}" if system.strip() else instruction


# -- failures ------------------------------------------------------------------------------------


def failure_prefix(settings: LlmSettings) -> str:
    return f"{settings.provider.value} model {settings.model}"


def redact(text: str, settings: LlmSettings) -> str:
    """``text`` with the API key replaced, wherever an API's message may have echoed it."""
    if settings.api_key is not None:
        key = settings.api_key.get_secret_value()
        if key:
            text = text.replace(key, REDACTED)
    return text


def reply_failure(settings: LlmSettings, failure: LlmFailure, reason: str) -> LlmError:
    """An `LlmError` for a reply that arrived but is no answer (a refusal, a cut-off, nothing)."""
    return LlmError(redact(f"{failure_prefix(settings)}: {reason}", settings), failure=failure)


def truncated(settings: LlmSettings) -> LlmError:
    return reply_failure(
        settings,
        LlmFailure.TRUNCATED,
        f"the reply was cut off at {settings.max_output_tokens} output tokens"
        f" (raise {ENV_LLM_MAX_OUTPUT_TOKENS})",
    )


@dataclass(frozen=True)
class SdkErrors:
    """The exception classes of one official SDK that gwi tells apart (both SDKs have them)."""

    timeout: type[Exception]
    connection: type[Exception]
    status: type[Exception]


def describe_sdk_error(
    exc: Exception, errors: SdkErrors, settings: LlmSettings, default_host: str
) -> LlmError:
    """Turn an SDK exception (raised after the SDK's own retries) into a readable `LlmError`."""
    attempts = f"{settings.max_retries + 1} attempt{'s' if settings.max_retries else ''}"
    host = urlsplit(settings.base_url).netloc.rpartition("@")[2] if settings.base_url else ""
    status: int | None = None
    if isinstance(exc, errors.timeout):
        failure = LlmFailure.TIMEOUT
        reason = f"no reply within {settings.timeout:g}s ({attempts})"
    elif isinstance(exc, errors.connection):
        failure = LlmFailure.CONNECTION
        reason = f"cannot connect to {host or default_host} ({attempts})"
    elif isinstance(exc, errors.status):
        status = int(getattr(exc, "status_code", 0))
        failure, reason = _status_reason(status, settings, attempts)
        detail = _one_line(redact(_api_detail(getattr(exc, "body", None)), settings))
        if detail:
            reason = f"{reason}: {detail}"
    else:
        failure = LlmFailure.OTHER
        reason = f"{type(exc).__name__}: {_one_line(redact(str(exc), settings))}"
    return LlmError(
        redact(f"{failure_prefix(settings)}: {reason}", settings), failure=failure, status=status
    )


def _status_reason(status: int, settings: LlmSettings, attempts: str) -> tuple[LlmFailure, str]:
    key_env = API_KEY_ENV.get(settings.provider, "the API key")
    if status == 401:
        return LlmFailure.AUTH, f"the API key was refused (HTTP 401; check {key_env})"
    if status == 403:
        return LlmFailure.AUTH, f"permission denied (HTTP 403; check {key_env})"
    if status == 404:
        return LlmFailure.NOT_FOUND, (
            f"not found (HTTP 404; check {ENV_LLM_MODEL} and {ENV_LLM_BASE_URL})"
        )
    if status == 429:
        return LlmFailure.RATE_LIMITED, f"rate limited (HTTP 429, {attempts})"
    if status == 529:
        return LlmFailure.OVERLOADED, f"overloaded (HTTP 529, {attempts})"
    if status >= 500 or status in (408, 409):
        return LlmFailure.SERVER_ERROR, f"server error (HTTP {status}, {attempts})"
    return LlmFailure.BAD_REQUEST, f"request refused (HTTP {status})"


def _api_detail(body: object) -> str:
    """The API's own message from an error body (both providers nest it under ``error``)."""
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        body = body["error"]
    if not isinstance(body, Mapping):
        return ""
    message = body.get("message")
    kind = body.get("type")
    return ": ".join(p for p in (kind, message) if isinstance(p, str) and p)


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"
