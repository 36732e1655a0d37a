"""Settings from the environment, as frozen pydantic models passed explicitly (never globals)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import GwiError


class Settings(BaseSettings):
    """What every gwi command reads from the environment."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path(".gwi"), validation_alias="GWI_DATA_DIR")
    signing_key: Path | None = Field(default=None, validation_alias="GWI_SIGNING_KEY")

    @property
    def signing_key_path(self) -> Path:
        """The Ed25519 key: ``GWI_SIGNING_KEY``, else beside (never inside) the runs folder."""
        return self.signing_key or self.data_dir / "signing-key.pem"


def load_settings() -> Settings:
    """Read the environment; a bad value becomes one clear line naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        raise GwiError(f"bad setting {name}: {first['msg']}") from None
