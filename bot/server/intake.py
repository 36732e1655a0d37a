"""Deciding what a webhook request is (pure): signed, well-formed, and which event it carries."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.server.signature import SHA1_HEADER, SIGNATURE_HEADER, SignatureVerdict, verify_signature

EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"

# GitHub's delivery ids are GUIDs and its event names snake_case words; the bounds below
# are looser than that but keep junk out of the database and the log lines.
_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,128}", re.ASCII)
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified webhook delivery, with the fields the queue indexes and logs carry."""

    delivery_id: str
    event: str
    action: str | None
    installation_id: int | None
    repository: str | None
    body: bytes


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not a delivery: the HTTP status to answer and a reason to show."""

    status: int
    reason: str


def read_delivery(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str]
) -> Delivery | Refusal:
    """Check a webhook request in the order that leaks least and stores nothing unsigned.

    The signature comes first (401), so an unauthenticated caller learns nothing about
    what else would have been accepted; then the GitHub headers and the JSON body (400).
    Headers are looked up by GitHub's spelling of their names, so ``headers`` should be
    case-insensitive as HTTP headers are (aiohttp's are; tests may use ``CIMultiDict``).
    """
    verdict = verify_signature(
        body,
        headers.get(SIGNATURE_HEADER),
        secrets,
        signature_sha1=headers.get(SHA1_HEADER),
    )
    if verdict is not SignatureVerdict.VALID:
        return Refusal(401, verdict.value)
    delivery_id = headers.get(DELIVERY_HEADER)
    if delivery_id is None or not _DELIVERY_ID.fullmatch(delivery_id):
        return Refusal(400, f"missing or malformed {DELIVERY_HEADER} header")
    event = headers.get(EVENT_HEADER)
    if event is None or not _EVENT_NAME.fullmatch(event):
        return Refusal(400, f"missing or malformed {EVENT_HEADER} header")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Refusal(400, "body is not JSON (set the webhook content type to application/json)")
    if not isinstance(data, dict):
        return Refusal(400, "body is not a JSON object")
    return Delivery(delivery_id, event, *classify(data), body=body)


def classify(payload: Mapping[str, Any]) -> tuple[str | None, int | None, str | None]:
    """The action, installation id and repository full name of a payload, when present.

    Payloads are tolerated as they come: a field of an unexpected type counts as absent.
    """
    action = payload.get("action")
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    return (
        action if isinstance(action, str) else None,
        installation_id
        if isinstance(installation_id, int) and not isinstance(installation_id, bool)
        else None,
        full_name if isinstance(full_name, str) else None,
    )
