"""Deciding what a webhook request is (pure): signed, well-formed, and which event it carries."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.queue.records import NOT_AN_OBJECT, Delivery
from bot.server.signature import SHA1_HEADER, SIGNATURE_HEADER, SignatureVerdict, verify_signature

EVENT_HEADER = "X-GitHub-Event"
DELIVERY_HEADER = "X-GitHub-Delivery"

# GitHub's delivery ids are GUIDs and its event names snake_case words; the bounds below
# are looser than that but keep junk out of the database and the log lines.
_DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,128}", re.ASCII)
_EVENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request is not a delivery: the HTTP status to answer and a reason to show."""

    status: int
    reason: str


_WHITESPACE = b" \t\r\n"


def read_delivery(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str]
) -> Delivery | Refusal:
    """Check a webhook request in the order that leaks least and stores nothing unsigned.

    The signature comes first (401), so an unauthenticated caller learns nothing about
    what else would have been accepted; then the GitHub headers and the body's shape
    (400). Headers are looked up by GitHub's spelling of their names, so ``headers``
    should be case-insensitive as HTTP headers are (aiohttp's are; tests may use
    ``CIMultiDict``).

    The body is only checked to be shaped like a JSON object (``{`` ... ``}``), in time
    independent of its size: the full parse is the worker's (:func:`bot.queue.records.parse_payload`), which
    needs the parsed payload anyway. Parsing here too would double the cost of every
    delivery and hold the event loop for a large one (up to 25 MiB); a signed body that
    looks like an object but does not parse is stored and then failed by the worker, with
    the parser's error, never dropped.
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
    if not looks_like_object(body):
        return Refusal(400, NOT_AN_OBJECT)
    return Delivery(delivery_id, event, body)


def looks_like_object(body: bytes) -> bool:
    """Whether the first and last bytes but whitespace are ``{`` and ``}``."""
    start, end = 0, len(body)
    while start < end and body[start] in _WHITESPACE:
        start += 1
    while end > start and body[end - 1] in _WHITESPACE:
        end -= 1
    return end - start >= 2 and body[start] == ord("{") and body[end - 1] == ord("}")
