"""The base every artifact schema derives from: strict, immutable, no unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Schema(BaseModel):
    """Frozen, forbids extra fields, validates on assignment; enums serialise as values."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        validate_default=True,
        use_enum_values=False,
        str_strip_whitespace=False,
    )
