"""Webhook signature checking (pure): HMAC-SHA256 over the raw body, any configured secret."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from gidgethub import ValidationFailure
from gidgethub.sansio import validate_event

SIGNATURE_HEADER = "X-Hub-Signature-256"
SHA1_HEADER = "X-Hub-Signature"

# GitHub writes lowercase hex; anything else (SHA-1, other lengths, non-ASCII) is refused
# before any HMAC is computed, which also keeps compare_digest on plain ASCII strings.
_SHA256_SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}", re.ASCII)


class SignatureVerdict(StrEnum):
    """Why a delivery's signature was accepted or refused; the value is the reason shown."""

    VALID = "valid"
    MISSING = "missing X-Hub-Signature-256 header"
    SHA1_ONLY = "only a SHA-1 X-Hub-Signature was sent; SHA-256 is required"
    MALFORMED = "X-Hub-Signature-256 is not of the form sha256=<64 lowercase hex>"
    MISMATCH = "signature does not match the webhook secret"


def verify_signature(
    body: bytes,
    signature_256: str | None,
    secrets: Sequence[str],
    *,
    signature_sha1: str | None = None,
) -> SignatureVerdict:
    """Check ``signature_256`` (the ``X-Hub-Signature-256`` value) against each secret.

    Every secret is tried, each comparison in constant time, so the time taken does not
    tell which secret (if any) matched. A request that carries only the legacy SHA-1
    header is refused: SHA-1 HMACs are what GitHub keeps for old integrations only.
    """
    if signature_256 is None:
        return (
            SignatureVerdict.SHA1_ONLY if signature_sha1 is not None else SignatureVerdict.MISSING
        )
    if not _SHA256_SIGNATURE.fullmatch(signature_256):
        return SignatureVerdict.MALFORMED
    matched = False
    for secret in secrets:
        try:
            validate_event(body, signature=signature_256, secret=secret)
        except ValidationFailure:
            continue
        matched = True
    return SignatureVerdict.VALID if matched else SignatureVerdict.MISMATCH
