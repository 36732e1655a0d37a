"""Field types shared by every artifact schema: hashes, git object ids, UTC times, names."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, StringConstraints

SHA256_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
PATCH_HASH_PREFIX = "sha256:"

#: The lowercase hex sha256 of some bytes: how artifacts and patches are named everywhere.
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
#: A git object id: sha1 (40 hex) or sha256 (64 hex) repositories.
GitSha = Annotated[str, StringConstraints(pattern=r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")]
#: Short human text (a reason, an explanation): no NUL, bounded.
Text = Annotated[str, StringConstraints(max_length=4000, pattern=r"^[^\x00]*$")]
#: A name or identifier: non-empty, one line.
Name = Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^\x00\r\n]+$")]
#: A repository-relative path as git prints it.
RepoPath = Annotated[
    str, StringConstraints(min_length=1, max_length=4096, pattern=r"^[^\x00]+$")
]
Count = Annotated[int, Field(ge=0)]


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


#: A timezone-aware instant, normalised to UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


def utcnow() -> datetime:
    return datetime.now(UTC)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def format_patch_hash(hex_digest: str) -> str:
    """The form people copy into `/gwi approve`: ``sha256:<64 hex>``."""
    return PATCH_HASH_PREFIX + hex_digest


def parse_patch_hash(text: str) -> str:
    """The 64 hex digits of ``sha256:<64 hex>``; anything else (a prefix, upper case) is refused."""
    if not text.startswith(PATCH_HASH_PREFIX):
        raise ValueError("a patch hash is written sha256:<64 lowercase hex digits>")
    digest = text[len(PATCH_HASH_PREFIX):]
    if not SHA256_HEX_RE.match(digest):
        raise ValueError(
            f"a patch hash needs exactly 64 lowercase hex digits after sha256:, got {len(digest)}"
            " characters"
        )
    return digest


def canonical_json(value: object) -> bytes:
    """The one byte form hashed and signed everywhere: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")
