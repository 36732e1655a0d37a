"""Both LLM providers against the fake LLM server: what is sent, what comes back, what fails."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pydantic import SecretStr

from bot.agents.llm import LlmClient, LlmError, LlmFailure, LlmReply, make_llm
from bot.agents.llm.anthropic_provider import build_request as anthropic_request
from bot.agents.llm.base import describe_sdk_error, json_instruction, system_prompt
from bot.agents.llm.openai_provider import build_request as openai_request
from bot.agents.llm.openai_provider import reply_from_completion
from bot.runs.bundle import SchemaRejected
from bot.runs.store import RunStore
from bot.schemas.audit import AuditAction
from bot.schemas.run import Actor, ActorType, Provider
from bot.schemas.state import RunState
from bot.schemas.triage import AdjustmentReason, LlmAdjustment
from bot.settings import JsonMode, LlmSettings
from tests import builders as b
from tests.fake_llm import (
    FAKE_LLM_KEY,
    FAKE_LLM_MODEL,
    Delay,
    FakeLlm,
    Raw,
    Status,
    Text,
    json_text,
)

PROVIDERS = ["anthropic", "openai"]
SYSTEM = "You adjust a merge-conflict complexity score."
PROMPT = "Baseline 4. Both sides edited the same function. Adjust?"
SCHEMA = LlmAdjustment.model_json_schema()
TRIAGE_AGENT = Actor(type=ActorType.AGENT, id="triage")

SettingsFor = Callable[..., LlmSettings]


def _client(settings: LlmSettings) -> LlmClient:
    llm = make_llm(settings)
    assert llm is not None
    return llm


def _ask(llm: LlmClient) -> LlmReply:
    return llm.complete_json(
        system=SYSTEM, prompt=PROMPT, schema_name="LlmAdjustment", json_schema=SCHEMA
    )


def _fails(llm: LlmClient, fake: FakeLlm) -> LlmError:
    with pytest.raises(LlmError) as caught:
        _ask(llm)
    fake.assert_secret_free(caught.value)
    assert "\n" not in str(caught.value)
    return caught.value


# -- a valid reply ---------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_reply_comes_back_as_raw_text_with_its_cost(
    provider: str, fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    text = '{"value": 1, "reasons": ["ambiguous_intent"]}'
    fake_llm.add(Text(text))
    llm = _client(llm_settings_for(provider))
    assert (llm.provider, llm.model) == (Provider(provider), FAKE_LLM_MODEL)
    reply = _ask(llm)
    assert reply.text == text
    assert reply.model == FAKE_LLM_MODEL
    assert reply.input_tokens and reply.input_tokens > 0 and reply.output_tokens
    assert reply.duration_s > 0
    [request] = fake_llm.requests
    assert request.provider == provider and request.auth_ok
    assert request.presented_key == FAKE_LLM_KEY


def test_the_anthropic_request_carries_model_prompts_and_schema(
    fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    fake_llm.add(json_text({"value": 0, "reasons": []}))
    _ask(_client(llm_settings_for("anthropic", max_output_tokens=777)))
    [request] = fake_llm.requests
    assert request.path == "/v1/messages"
    assert request.headers["anthropic-version"]
    assert request.body["model"] == FAKE_LLM_MODEL
    assert request.body["max_tokens"] == 777
    assert request.body["messages"] == [{"role": "user", "content": PROMPT}]
    assert request.body["system"] == system_prompt(SYSTEM, "LlmAdjustment", SCHEMA)
    assert request.body["system"].startswith(SYSTEM + "\n\n")
    assert json.dumps(SCHEMA, separators=(",", ":"), ensure_ascii=False) in request.body["system"]
    assert "output_config" not in request.body  # auto: the prompt alone asks for JSON


def test_the_openai_request_carries_model_prompts_and_schema(
    fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    fake_llm.add(json_text({"value": 0, "reasons": []}))
    _ask(_client(llm_settings_for("openai", max_output_tokens=777)))
    [request] = fake_llm.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {FAKE_LLM_KEY}"
    assert request.body["model"] == FAKE_LLM_MODEL
    assert request.body["messages"] == [
        {"role": "system", "content": system_prompt(SYSTEM, "LlmAdjustment", SCHEMA)},
        {"role": "user", "content": PROMPT},
    ]
    assert request.body["max_tokens"] == 777  # a custom base URL: the compatible servers' name
    assert request.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "LlmAdjustment", "schema": SCHEMA, "strict": False},
    }


def test_anthropic_structured_output_on_request(
    fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    fake_llm.add(json_text({"value": 0, "reasons": []}))
    _ask(_client(llm_settings_for("anthropic", json_mode=JsonMode.SCHEMA)))
    [request] = fake_llm.requests
    output_format = request.body["output_config"]["format"]
    assert output_format["type"] == "json_schema"
    assert set(output_format["schema"]["properties"]) == {"value", "reasons"}
    assert "JSON Schema LlmAdjustment" in request.body["system"]  # the prompt says it too


@pytest.mark.parametrize(
    ("mode", "expected"),
    [(JsonMode.OBJECT, {"type": "json_object"}), (JsonMode.PROMPT, None)],
)
def test_openai_json_modes(
    mode: JsonMode, expected: Any, fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    fake_llm.add(json_text({}))
    _ask(_client(llm_settings_for("openai", json_mode=mode)))
    [request] = fake_llm.requests
    assert request.body.get("response_format") == expected
    assert "JSON Schema LlmAdjustment" in request.body["messages"][0]["content"]


def test_openai_itself_gets_max_completion_tokens() -> None:
    settings = LlmSettings(provider=Provider.OPENAI, model="gpt-test", api_key=SecretStr("sk-x"))
    body = openai_request(settings, system="s", prompt="p", schema_name="S", json_schema={})
    assert body["max_completion_tokens"] == 4096 and "max_tokens" not in body


def test_a_local_server_without_a_key(fake_llm: FakeLlm, llm_settings_for: SettingsFor) -> None:
    fake_llm.api_key = None  # like llama.cpp or Ollama: no authentication
    fake_llm.add(json_text({}))
    reply = _ask(_client(llm_settings_for("openai", api_key=None)))
    assert reply.text == "{}"
    assert fake_llm.requests[0].headers["authorization"] == "Bearer no-key"


def test_the_prompt_without_a_system_text_is_the_instruction_alone() -> None:
    assert system_prompt("  ", "S", {"type": "object"}) == json_instruction("S", {"type": "object"})
    with pytest.raises(ValueError, match="schema name"):
        system_prompt("s", "not a name", {})
    settings = LlmSettings(provider=Provider.ANTHROPIC, model="m", api_key=SecretStr("k"))
    body = anthropic_request(settings, system="", prompt="p", schema_name="S", json_schema={})
    assert body["system"] == json_instruction("S", {})


@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_client_serves_several_worker_threads(
    provider: str, fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    fake_llm.add(json_text({"value": 0, "reasons": []}), times=4)
    llm = _client(llm_settings_for(provider))
    with ThreadPoolExecutor(max_workers=4) as pool:
        replies = list(pool.map(lambda _: _ask(llm), range(4)))
    assert [r.text for r in replies] == ['{"value": 0, "reasons": []}'] * 4
    assert len(fake_llm.requests) == 4
    llm.close()


# -- invalid output is returned as it is, and the run's validation fails it --------------------

NOT_JSON = 'Sure! Here is the adjustment: {"value": 1'
FENCED = '```json\n{"value": 0, "reasons": []}\n```'
OFF_SCHEMA = '{"value": 5, "reasons": ["clear_intent"]}'


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("text", [NOT_JSON, FENCED, OFF_SCHEMA])
def test_invalid_output_is_returned_unrepaired(
    provider: str, text: str, fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    fake_llm.add(Text(text))
    assert _ask(_client(llm_settings_for(provider))).text == text


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("text", [NOT_JSON, FENCED, OFF_SCHEMA])
def test_invalid_output_fails_the_run_with_schema_validation_failed(
    provider: str, text: str, fake_llm: FakeLlm, llm_settings_for: SettingsFor, store: RunStore
) -> None:
    fake_llm.add(Text(text))
    reply = _ask(_client(llm_settings_for(provider)))
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run, pytest.raises(SchemaRejected):
        run.accept("triage.json", LlmAdjustment, reply.text, TRIAGE_AGENT)
    ctx = store.read_context(run_id)
    assert ctx.state is RunState.FAILED
    assert ctx.error is not None and ctx.error.startswith("triage produced an invalid triage.json")
    [event] = [
        e for e in store.read_chain(run_id).events
        if e.action is AuditAction.SCHEMA_VALIDATION_FAILED
    ]
    assert event.actor == TRIAGE_AGENT
    assert event.data["schema"] == "LlmAdjustment" and event.data["errors"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_valid_output_is_accepted(
    provider: str, fake_llm: FakeLlm, llm_settings_for: SettingsFor, store: RunStore
) -> None:
    fake_llm.add(json_text({"value": -1, "reasons": ["isolated_change"]}))
    reply = _ask(_client(llm_settings_for(provider)))
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        adjustment = run.accept("triage.json", LlmAdjustment, reply.text, TRIAGE_AGENT)
    assert adjustment == LlmAdjustment(value=-1, reasons=[AdjustmentReason.ISOLATED_CHANGE])
    assert store.read_context(run_id).state is RunState.QUEUED


# -- failures: after the SDK's bounded retries, an LlmError that says why -----------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_timeout_after_bounded_retries(
    provider: str, fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    fake_llm.add(Delay(2.0), times=2)
    error = _fails(_client(llm_settings_for(provider, timeout=0.25, max_retries=1)), fake_llm)
    assert error.failure is LlmFailure.TIMEOUT and error.status is None
    assert str(error) == f"{provider} model {FAKE_LLM_MODEL}: no reply within 0.25s (2 attempts)"
    assert len(fake_llm.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("status", "failure", "reason"),
    [
        (500, LlmFailure.SERVER_ERROR, "server error (HTTP 500, 3 attempts)"),
        (503, LlmFailure.SERVER_ERROR, "server error (HTTP 503, 3 attempts)"),
        (429, LlmFailure.RATE_LIMITED, "rate limited (HTTP 429, 3 attempts)"),
    ],
)
def test_http_errors_after_bounded_retries(
    provider: str,
    status: int,
    failure: LlmFailure,
    reason: str,
    fake_llm: FakeLlm,
    llm_settings_for: SettingsFor,
) -> None:
    fake_llm.add(Status(status, "busy, try later"), times=3)
    error = _fails(_client(llm_settings_for(provider, max_retries=2)), fake_llm)
    assert (error.failure, error.status) == (failure, status)
    assert str(error).startswith(f"{provider} model {FAKE_LLM_MODEL}: {reason}: ")
    assert str(error).endswith("busy, try later")
    assert len(fake_llm.requests) == 3


def test_anthropic_overloaded(fake_llm: FakeLlm, llm_settings_for: SettingsFor) -> None:
    fake_llm.add(Status(529, "Overloaded"), times=2)
    error = _fails(_client(llm_settings_for("anthropic")), fake_llm)
    assert error.failure is LlmFailure.OVERLOADED
    assert str(error) == (
        f"anthropic model {FAKE_LLM_MODEL}: overloaded (HTTP 529, 2 attempts):"
        " overloaded_error: Overloaded"
    )
    assert len(fake_llm.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_retry_that_succeeds_is_no_error(
    provider: str, fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    fake_llm.add(Status(503), json_text({"value": 0, "reasons": []}))
    assert _ask(_client(llm_settings_for(provider))).text == '{"value": 0, "reasons": []}'
    assert len(fake_llm.requests) == 2


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_refused_key_is_not_retried_and_never_echoed(
    provider: str, fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    wrong = "sk-wrong-key-5e6f7a8b9c"
    error = _fails(_client(llm_settings_for(provider, api_key=wrong)), fake_llm)
    assert error.failure is LlmFailure.AUTH and error.status == 401
    key_env = "ANTHROPIC_API_KEY" if provider == "anthropic" else "OPENAI_API_KEY"
    assert f"the API key was refused (HTTP 401; check {key_env})" in str(error)
    assert wrong not in str(error) and "[redacted]" in str(error)  # the fake echoed it
    assert len(fake_llm.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("status", "failure", "reason"),
    [
        (400, LlmFailure.BAD_REQUEST, "request refused (HTTP 400)"),
        (403, LlmFailure.AUTH, "permission denied (HTTP 403; check"),
        (404, LlmFailure.NOT_FOUND, "not found (HTTP 404; check GWI_LLM_MODEL and"),
    ],
)
def test_client_errors_are_not_retried(
    provider: str,
    status: int,
    failure: LlmFailure,
    reason: str,
    fake_llm: FakeLlm,
    llm_settings_for: SettingsFor,
) -> None:
    fake_llm.add(Status(status, "no such model"))
    error = _fails(_client(llm_settings_for(provider)), fake_llm)
    assert error.failure is failure and reason in str(error)
    assert len(fake_llm.requests) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_proxy_error_page_is_a_server_error(
    provider: str, fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    fake_llm.add(Raw(502, b"<html><body>Bad Gateway</body></html>"))
    error = _fails(_client(llm_settings_for(provider, max_retries=0)), fake_llm)
    assert error.failure is LlmFailure.SERVER_ERROR and error.status == 502
    assert str(error).startswith(f"{provider} model {FAKE_LLM_MODEL}: server error (HTTP 502,")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_nothing_listening(provider: str, llm_settings_for: SettingsFor) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, and is closed now
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}" + ("/v1" if provider == "openai" else "")
    llm = _client(llm_settings_for(provider, base_url=base, max_retries=0))
    with pytest.raises(LlmError) as caught:
        _ask(llm)
    assert caught.value.failure is LlmFailure.CONNECTION
    assert str(caught.value) == (
        f"{provider} model {FAKE_LLM_MODEL}: cannot connect to 127.0.0.1:{port} (1 attempt)"
    )


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize(
    ("reply", "failure", "reason"),
    [
        (Text("I cannot help with that.", finish="refusal"), LlmFailure.REFUSED,
         "the model refused to answer"),
        (Text('{"value": 1, "rea', finish="max_tokens"), LlmFailure.TRUNCATED,
         "the reply was cut off at 4096 output tokens (raise GWI_LLM_MAX_OUTPUT_TOKENS)"),
        (Text(""), LlmFailure.EMPTY, "the reply held no text"),
    ],
)
def test_replies_that_are_no_answer(
    provider: str,
    reply: Text,
    failure: LlmFailure,
    reason: str,
    fake_llm: FakeLlm,
    llm_settings_for: SettingsFor,
) -> None:
    fake_llm.add(reply)
    error = _fails(_client(llm_settings_for(provider)), fake_llm)
    assert error.failure is failure
    assert str(error) == f"{provider} model {FAKE_LLM_MODEL}: {reason}"
    assert len(fake_llm.requests) == 1


@pytest.mark.parametrize(("provider", "extra"), [("anthropic", "anthropic"), ("openai", "openai")])
def test_a_missing_sdk_names_the_extra_to_install(
    provider: str, extra: str, monkeypatch: pytest.MonkeyPatch, llm_settings_for: SettingsFor
) -> None:
    monkeypatch.setitem(sys.modules, extra, None)  # what an uninstalled package looks like
    monkeypatch.delitem(sys.modules, f"bot.agents.llm.{extra}_provider", raising=False)
    with pytest.raises(LlmError) as caught:
        make_llm(llm_settings_for(provider))
    assert caught.value.failure is LlmFailure.MISSING_SDK
    assert str(caught.value) == (
        f"the {extra} provider needs the {extra} package: pip install 'gwi[{extra}]'"
    )


def test_other_sdk_errors_are_described_without_the_key() -> None:
    import anthropic

    from bot.agents.llm.anthropic_provider import _ERRORS

    settings = LlmSettings(provider=Provider.ANTHROPIC, model="m", api_key=SecretStr("sk-abc123"))
    error = describe_sdk_error(
        anthropic.AnthropicError("odd reply\nfor key sk-abc123"), _ERRORS, settings, "h"
    )
    assert error.failure is LlmFailure.OTHER
    assert str(error) == "anthropic model m: AnthropicError: odd reply for key [redacted]"


def test_openai_replies_without_an_answer() -> None:
    from openai.types.chat import ChatCompletion

    settings = LlmSettings(provider=Provider.OPENAI, model="m", api_key=SecretStr("k"))
    base = {"id": "c", "object": "chat.completion", "created": 0, "model": "m"}
    empty = ChatCompletion.model_validate({**base, "choices": []})
    with pytest.raises(LlmError, match="no choices") as caught:
        reply_from_completion(empty, settings, 0.0)
    assert caught.value.failure is LlmFailure.EMPTY
    filtered = ChatCompletion.model_validate({**base, "choices": [{
        "index": 0, "finish_reason": "content_filter",
        "message": {"role": "assistant", "content": "partial"},
    }]})
    with pytest.raises(LlmError, match="withheld by a filter") as caught:
        reply_from_completion(filtered, settings, 0.0)
    assert caught.value.failure is LlmFailure.REFUSED


# -- the fake itself ---------------------------------------------------------------------------


def test_the_fake_refuses_what_the_real_apis_refuse(fake_llm: FakeLlm) -> None:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        fake_llm.anthropic_url + "/v1/messages",
        data=json.dumps({"model": "m", "messages": []}).encode(),
        headers={"content-type": "application/json", "x-api-key": FAKE_LLM_KEY},
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert json.load(caught.value)["error"]["type"] == "invalid_request_error"
    problems = fake_llm.pop_violations()
    assert any("anthropic-version" in p for p in problems)
    assert any("max_tokens" in p for p in problems)
    assert any("messages must be a non-empty list" in p for p in problems)


def test_the_fake_flags_a_request_it_has_no_reply_for(
    fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    with pytest.raises(LlmError):
        _ask(_client(llm_settings_for("openai", max_retries=0)))
    assert fake_llm.pop_violations() == ["POST /v1/chat/completions: no scripted reply left"]


def test_the_fake_flags_a_key_sent_in_the_body(
    fake_llm: FakeLlm, llm_settings_for: SettingsFor
) -> None:
    fake_llm.add(json_text({}))
    llm = _client(llm_settings_for("openai"))
    with pytest.raises(LlmError):
        llm.complete_json(
            system="", prompt=f"the key is {FAKE_LLM_KEY}", schema_name="S", json_schema={}
        )
    assert fake_llm.pop_violations() == [
        "POST /v1/chat/completions: the API key was sent in the request body"
    ]
    assert fake_llm.pending == 1


def test_the_fakes_leak_check_catches_a_leak(fake_llm: FakeLlm) -> None:
    fake_llm.assert_secret_free(LlmError("nothing here", failure=LlmFailure.OTHER))
    with pytest.raises(AssertionError, match="leaked"):
        fake_llm.assert_secret_free(RuntimeError(f"key={FAKE_LLM_KEY}"))
