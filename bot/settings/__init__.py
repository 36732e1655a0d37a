"""Settings: one tree read from the environment once, frozen, and passed explicitly (never a
global). The root holds where gwi keeps its data; its groups are the web process (`server`), the
GitHub App (`github`, absent until its variables are set), the LLM (`llm`) and the run pages' sign-in
(`pages`, absent until its four variables are set). Every bad value is
reported by `bot.settings.describe.describe_error`: one line naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import GwiError
from bot.schemas.run import RUN_ID_RE
from bot.settings.describe import describe_error
from bot.settings.github_group import GitHubSettings
from bot.settings.llm_group import JsonMode, LlmSettings
from bot.settings.pages_group import PagesSettings
from bot.settings.server_group import ServerSettings

__all__ = [
    "GitHubSettings",
    "JsonMode",
    "LlmSettings",
    "PagesSettings",
    "ServerSettings",
    "Settings",
    "describe_error",
    "load_settings",
    "pages_enabled",
    "run_page_url",
    "variables",
]


class Settings(BaseSettings):
    """The root of the settings tree. Each field is read from the variable named by its alias."""

    model_config = SettingsConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        case_sensitive=True,
        env_ignore_empty=False,
    )

    # The user's data folder, never the current folder: `cd my-repo && gwi run` must not leave
    # a signing key in the repository, one `git add -A` away from being committed.
    data_dir: Path = Field(default_factory=lambda: default_data_dir(os.environ),
                           alias="GWI_DATA_DIR")
    signing_key: Path | None = Field(default=None, alias="GWI_SIGNING_KEY")
    key_in_work_tree: bool = Field(default=False, alias="GWI_KEY_IN_WORK_TREE")
    # The groups are read by their own classes (each knows its variables); NoDecode keeps a
    # variable that happens to be named like a group from being parsed as JSON.
    server: Annotated[ServerSettings, NoDecode] = Field(default_factory=ServerSettings)
    github: Annotated[GitHubSettings | None, NoDecode] = None
    llm: Annotated[LlmSettings, NoDecode] = Field(default_factory=LlmSettings)
    pages: Annotated[PagesSettings | None, NoDecode] = None

    @field_validator("data_dir", "signing_key", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            raise ValueError("is set but empty: give a path, or unset it for the default")
        return value

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().absolute()

    @model_validator(mode="after")
    def _shared_key_with_a_database(self) -> Settings:
        # Processes sharing a database run each other's jobs and extend each other's bundles:
        # a key each one made for itself would sign one run with several keys.
        if self.server.database_url is not None and self.signing_key is None:
            raise ValueError("GWI_SIGNING_KEY must be set when GWI_DATABASE_URL is: every"
                             " process sharing the database signs with the same key file")
        return self

    @property
    def signing_key_path(self) -> Path:
        """The Ed25519 key: ``GWI_SIGNING_KEY``, else beside (never inside) the runs folder."""
        return self.signing_key or self.data_dir / "signing-key.pem"

    def require_github(self) -> GitHubSettings:
        """The App's credentials, for the commands that talk to GitHub; a GwiError without them."""
        if self.github is None:
            return GitHubSettings.from_env({})  # raises, naming what is missing
        return self.github


#: The variables whose value may be shown in an error: none of them is a secret.
_ECHO = frozenset({"GWI_DATA_DIR", "GWI_SIGNING_KEY", "GWI_KEY_IN_WORK_TREE", "PORT", "GWI_HOST", "GWI_WORKERS",
                   "GWI_LOG_LEVEL", "GWI_MAX_BODY_BYTES", "GWI_LEASE_SECONDS"})
_ROOT_ALIASES = frozenset({"GWI_DATA_DIR", "GWI_SIGNING_KEY", "GWI_KEY_IN_WORK_TREE"})


def variables() -> list[str]:
    """Every environment variable gwi reads (docs/configuration.md lists each; a test checks)."""
    from bot.settings import github_group, llm_group, pages_group

    names = {field.alias for group in (Settings, ServerSettings)
             for field in group.model_fields.values() if field.alias}
    for module in (github_group, llm_group, pages_group):
        names |= {value for key, value in vars(module).items()
                  if key.startswith("ENV_") and isinstance(value, str)}
    names |= set(llm_group.API_KEY_ENV.values())
    return sorted(names)


def pages_enabled(settings: Settings) -> bool:
    """Whether `gwi serve` serves run pages (and links to them are posted)."""
    return settings.pages is not None


def run_page_url(settings: Settings, run_id: str) -> str | None:
    """The run's page, to link from GitHub; None while pages are off (then nothing links)."""
    if settings.pages is None:
        return None
    if not RUN_ID_RE.fullmatch(run_id):
        raise GwiError(f"not a run id: {run_id!r}")
    return f"{settings.pages.public_url}/runs/{run_id}"


def default_data_dir(environ: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/gwi``, else ``~/.local/share/gwi`` (the XDG base directory default)."""
    xdg = environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "gwi"


def load_settings(overrides: Mapping[str, Any] | None = None) -> Settings:
    """Read the whole tree from the environment (``overrides`` win, keyed by variable name).

    Each variable is read once, by the one group that owns it. A bad value becomes one
    :class:`GwiError` line naming the variable, never a traceback, never a secret.
    """
    given = dict(overrides or {})
    # A whole group may be given as it is (tests, or a caller that built it already).
    groups = {name: given.pop(name) for name in ("server", "github", "llm", "pages")
              if name in given}
    environ = {**os.environ, **{k: v for k, v in given.items() if isinstance(v, str)}}
    try:
        server = groups.get("server") or ServerSettings(
            **{k: v for k, v in given.items() if k not in _ROOT_ALIASES})
        github = (groups["github"] if "github" in groups
                  else GitHubSettings.from_environment(environ))
        llm = groups["llm"] if "llm" in groups else LlmSettings.from_env(environ)
        pages = (groups["pages"] if "pages" in groups
                 else PagesSettings.from_environment(environ))
        root = {k: v for k, v in given.items() if k in _ROOT_ALIASES}
        return Settings(**root, server=server, github=github, llm=llm, pages=pages)
    except ValidationError as exc:
        names = {name: field.alias for group in (Settings, ServerSettings)
                 for name, field in group.model_fields.items() if field.alias}
        raise GwiError(describe_error(exc, names, echo=_ECHO)) from None
