"""The one provider interface for LLM-backed agents: `make_llm` builds the client the settings ask
for, importing its provider (and that provider's SDK) only then, so an offline gwi never loads one.
"""

from __future__ import annotations

from bot.agents.llm.base import LlmClient, LlmError, LlmFailure, LlmReply
from bot.schemas.run import Provider
from bot.settings import LlmSettings

__all__ = ["LlmClient", "LlmError", "LlmFailure", "LlmReply", "make_llm"]

_EXTRAS = {Provider.ANTHROPIC: "anthropic", Provider.OPENAI: "openai"}


def make_llm(settings: LlmSettings) -> LlmClient | None:
    """The client ``settings`` ask for, or None offline (then nothing is ever sent anywhere)."""
    if settings.provider is Provider.OFFLINE:
        return None
    try:
        if settings.provider is Provider.ANTHROPIC:
            from bot.agents.llm.anthropic_provider import AnthropicLlm

            return AnthropicLlm(settings)
        from bot.agents.llm.openai_provider import OpenAiLlm

        return OpenAiLlm(settings)
    except ModuleNotFoundError as exc:
        extra = _EXTRAS[settings.provider]
        if exc.name is None or exc.name.split(".")[0] != extra:
            raise
        raise LlmError(
            f"the {extra} provider needs the {extra} package: pip install 'gwi[{extra}]'",
            failure=LlmFailure.MISSING_SDK,
        ) from None
