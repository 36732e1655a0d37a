"""LLM settings from the environment: offline by default, one clear line for each mistake."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from bot.agents.llm import make_llm
from bot.errors import GwiError
from bot.schemas.run import AgentConfig, Provider
from bot.settings import JsonMode, LlmSettings, Settings, load_settings

KEY = "sk-settings-test-key-9d8c7b6a"


def test_offline_is_the_default_and_builds_no_client() -> None:
    settings = load_settings()
    assert settings.llm == LlmSettings()
    assert settings.llm.offline
    assert settings.llm.agent_config == AgentConfig(provider=Provider.OFFLINE)
    assert make_llm(settings.llm) is None


def test_anthropic_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GWI_LLM_PROVIDER", " Anthropic ")
    monkeypatch.setenv("GWI_LLM_MODEL", "claude-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-this-one")
    monkeypatch.setenv("GWI_LLM_TIMEOUT", "12.5")
    monkeypatch.setenv("GWI_LLM_MAX_RETRIES", "0")
    monkeypatch.setenv("GWI_LLM_MAX_OUTPUT_TOKENS", "2000")
    monkeypatch.setenv("GWI_LLM_JSON_MODE", "SCHEMA")
    llm = load_settings().llm
    assert llm.provider is Provider.ANTHROPIC and llm.model == "claude-test"
    assert llm.api_key is not None and llm.api_key.get_secret_value() == KEY
    assert (llm.timeout, llm.max_retries, llm.max_output_tokens) == (12.5, 0, 2000)
    assert llm.json_mode is JsonMode.SCHEMA and llm.base_url is None
    assert KEY not in repr(llm) and KEY not in str(load_settings())
    assert llm.agent_config == AgentConfig(provider=Provider.ANTHROPIC, model="claude-test")


def test_defaults_for_a_configured_provider() -> None:
    llm = LlmSettings.from_env(
        {"GWI_LLM_PROVIDER": "openai", "GWI_LLM_MODEL": "gpt-test", "OPENAI_API_KEY": KEY}
    )
    assert (llm.timeout, llm.max_retries, llm.max_output_tokens) == (60.0, 2, 4096)
    assert llm.json_mode is JsonMode.AUTO


def test_a_local_openai_compatible_server_may_need_no_key() -> None:
    llm = LlmSettings.from_env(
        {
            "GWI_LLM_PROVIDER": "openai",
            "GWI_LLM_MODEL": "qwen2.5-coder",
            "GWI_LLM_BASE_URL": "http://localhost:11434/v1/",
        }
    )
    assert llm.api_key is None
    assert llm.base_url == "http://localhost:11434/v1"


def test_offline_ignores_what_other_providers_left_behind() -> None:
    llm = LlmSettings.from_env(
        {"GWI_LLM_MODEL": "gpt-test", "OPENAI_API_KEY": KEY, "GWI_LLM_BASE_URL": "nonsense"}
    )
    assert llm == LlmSettings()


def test_empty_variables_count_as_unset() -> None:
    assert LlmSettings.from_env({"GWI_LLM_PROVIDER": "", "GWI_LLM_TIMEOUT": " "}) == LlmSettings()


OPENAI = {"GWI_LLM_PROVIDER": "openai", "GWI_LLM_MODEL": "m", "OPENAI_API_KEY": KEY}
ANTHROPIC = {"GWI_LLM_PROVIDER": "anthropic", "GWI_LLM_MODEL": "m", "ANTHROPIC_API_KEY": KEY}
MISTAKES: list[tuple[dict[str, str], str]] = [
    (
        {"GWI_LLM_PROVIDER": "anthropic", "ANTHROPIC_API_KEY": KEY},
        "GWI_LLM_MODEL is not set: GWI_LLM_PROVIDER=anthropic needs a model name",
    ),
    (
        {"GWI_LLM_PROVIDER": "antropic", "GWI_LLM_MODEL": "m"},
        (
            "bad setting GWI_LLM_PROVIDER: unknown provider 'antropic'"
            " (use offline, anthropic, openai)"
        ),
    ),
    (
        {**ANTHROPIC, "ANTHROPIC_API_KEY": "", "OPENAI_API_KEY": KEY},
        "ANTHROPIC_API_KEY is not set: GWI_LLM_PROVIDER=anthropic needs it",
    ),
    (
        {**ANTHROPIC, "ANTHROPIC_API_KEY": " "},
        "ANTHROPIC_API_KEY is not set: GWI_LLM_PROVIDER=anthropic needs it",
    ),
    (
        {**OPENAI, "OPENAI_API_KEY": ""},
        (
            "OPENAI_API_KEY is not set: GWI_LLM_PROVIDER=openai needs it (a local"
            " OpenAI-compatible server named by GWI_LLM_BASE_URL may need none)"
        ),
    ),
    (
        {**OPENAI, "GWI_LLM_TIMEOUT": "soon"},
        (
            "bad setting GWI_LLM_TIMEOUT: Input should be a valid number, unable to parse"
            " string as a number"
        ),
    ),
    (
        {**OPENAI, "GWI_LLM_TIMEOUT": "0"},
        "bad setting GWI_LLM_TIMEOUT: Input should be greater than 0",
    ),
    (
        {**OPENAI, "GWI_LLM_MAX_RETRIES": "-1"},
        "bad setting GWI_LLM_MAX_RETRIES: Input should be greater than or equal to 0",
    ),
    (
        {**OPENAI, "GWI_LLM_MAX_OUTPUT_TOKENS": "many"},
        (
            "bad setting GWI_LLM_MAX_OUTPUT_TOKENS: Input should be a valid integer, unable to"
            " parse string as an integer"
        ),
    ),
    (
        {**OPENAI, "GWI_LLM_BASE_URL": "localhost:8080"},
        "bad setting GWI_LLM_BASE_URL: must be an http(s) URL such as http://localhost:8080/v1",
    ),
    (
        {**OPENAI, "GWI_LLM_JSON_MODE": "strict"},
        "bad setting GWI_LLM_JSON_MODE: Input should be 'auto', 'schema', 'object' or 'prompt'",
    ),
    (
        {**ANTHROPIC, "GWI_LLM_JSON_MODE": "object"},
        (
            "GWI_LLM_JSON_MODE=object is for openai only: Anthropic has no JSON-object mode"
            " (use schema or prompt)"
        ),
    ),
]


@pytest.mark.parametrize(("env", "message"), MISTAKES)
def test_each_mistake_is_one_line_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(GwiError) as caught:
        LlmSettings.from_env(env)
    assert str(caught.value) == message
    assert "\n" not in str(caught.value) and KEY not in str(caught.value)


def test_load_settings_reports_the_llm_mistake(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GWI_LLM_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    with pytest.raises(GwiError, match="^GWI_LLM_MODEL is not set"):
        load_settings()


def test_a_stray_llm_variable_is_not_parsed_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM", '{"provider": "openai"}')
    assert load_settings().llm.offline  # variables are case-sensitive: LLM is not the field


def test_settings_can_be_given_explicitly() -> None:
    llm = LlmSettings(provider=Provider.OPENAI, model="m", api_key=SecretStr(KEY))
    assert Settings(llm=llm).llm is llm


def test_direct_construction_checks_the_same_rules() -> None:
    with pytest.raises(ValidationError, match="offline provider takes no model"):
        LlmSettings(model="m")
    with pytest.raises(ValidationError, match="needs a model name"):
        LlmSettings(provider=Provider.OPENAI, api_key=SecretStr(KEY))
    with pytest.raises(ValidationError) as caught:
        LlmSettings(provider=Provider.OPENAI, model="m", api_key=SecretStr(KEY), timeout=-1)
    assert KEY not in str(caught.value)
