"""The pure intake core: signature verdicts and reading a request into a delivery."""

from __future__ import annotations

import json

import pytest
from multidict import CIMultiDict

from bot.queue.records import NOT_AN_OBJECT, Classification, Delivery, classify, parse_payload
from bot.server.intake import Refusal, looks_like_object, read_delivery
from bot.server.signature import SignatureVerdict, verify_signature
from tests.conftest import WEBHOOK_SECRET, sign, signed_headers

BODY = b'{"action":"opened","installation":{"id":42},"repository":{"full_name":"octo/repo"}}'
SECRETS = (WEBHOOK_SECRET,)


def test_a_correct_sha256_signature_is_valid() -> None:
    assert verify_signature(BODY, sign(BODY), SECRETS) is SignatureVerdict.VALID


def test_the_old_secret_is_accepted_during_a_rotation() -> None:
    old_signature = sign(BODY, "old-secret")
    assert verify_signature(BODY, old_signature, ("new-secret", "old-secret")) is (
        SignatureVerdict.VALID
    )
    assert verify_signature(BODY, old_signature, ("new-secret",)) is SignatureVerdict.MISMATCH


@pytest.mark.parametrize(
    ("signature", "verdict"),
    [
        (None, SignatureVerdict.MISSING),
        ("", SignatureVerdict.MALFORMED),
        ("sha256=", SignatureVerdict.MALFORMED),
        ("sha256=abc", SignatureVerdict.MALFORMED),
        ("sha1=" + "0" * 40, SignatureVerdict.MALFORMED),
        ("SHA256=" + "0" * 64, SignatureVerdict.MALFORMED),
        ("sha256=" + "g" * 64, SignatureVerdict.MALFORMED),
        ("sha256=" + "０" * 64, SignatureVerdict.MALFORMED),  # fullwidth digits
        ("sha256=" + "0" * 64 + " ", SignatureVerdict.MALFORMED),
        ("sha256=" + "0" * 64, SignatureVerdict.MISMATCH),
    ],
)
def test_bad_signatures_are_refused(signature: str | None, verdict: SignatureVerdict) -> None:
    assert verify_signature(BODY, signature, SECRETS) is verdict


def test_uppercase_hex_of_the_right_digest_is_malformed_not_valid() -> None:
    assert verify_signature(BODY, sign(BODY).upper().replace("SHA256", "sha256"), SECRETS) is (
        SignatureVerdict.MALFORMED
    )


def test_a_sha1_signature_alone_is_refused_even_when_correct() -> None:
    import hashlib
    import hmac

    sha1 = "sha1=" + hmac.new(WEBHOOK_SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert verify_signature(BODY, None, SECRETS, signature_sha1=sha1) is SignatureVerdict.SHA1_ONLY


def test_a_signature_over_other_bytes_does_not_match() -> None:
    assert verify_signature(BODY + b" ", sign(BODY), SECRETS) is SignatureVerdict.MISMATCH


def test_a_good_request_reads_into_a_delivery() -> None:
    result = read_delivery(signed_headers(BODY, "pull_request", "guid-1"), BODY, SECRETS)
    assert result == Delivery("guid-1", "pull_request", BODY)


def test_header_names_are_case_insensitive() -> None:
    headers = CIMultiDict(
        (k.lower(), v) for k, v in signed_headers(BODY, "issues", "guid-1").items()
    )
    assert isinstance(read_delivery(headers, BODY, SECRETS), Delivery)


def test_the_signature_is_checked_before_anything_else() -> None:
    assert read_delivery({}, b"not json", SECRETS) == Refusal(401, SignatureVerdict.MISSING.value)


@pytest.mark.parametrize(
    ("drop", "replace", "reason"),
    [
        ("X-GitHub-Delivery", None, "X-GitHub-Delivery"),
        ("X-GitHub-Event", None, "X-GitHub-Event"),
        (None, ("X-GitHub-Delivery", "has space"), "X-GitHub-Delivery"),
        (None, ("X-GitHub-Delivery", "x" * 129), "X-GitHub-Delivery"),
        (None, ("X-GitHub-Event", "pull request"), "X-GitHub-Event"),
        (None, ("X-GitHub-Event", ""), "X-GitHub-Event"),
    ],
)
def test_missing_or_malformed_github_headers_are_400(
    drop: str | None, replace: tuple[str, str] | None, reason: str
) -> None:
    headers = signed_headers(BODY, "issues", "guid-1")
    if drop:
        del headers[drop]
    if replace:
        headers[replace[0]] = replace[1]
    result = read_delivery(headers, BODY, SECRETS)
    assert isinstance(result, Refusal) and result.status == 400 and reason in result.reason


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"}",
        b"not json",
        b"[1, 2]",
        b'"text"',
        b"null",
        b"\xff\xfe{}",
        b"payload=%7B%7D",
        b'{"a": 1',
        b" \t\r\n ",
        b'{"a": 1}x',
    ],
)
def test_a_signed_body_not_shaped_like_a_json_object_is_400(body: bytes) -> None:
    result = read_delivery(signed_headers(body, "issues", "guid-1"), body, SECRETS)
    assert result == Refusal(400, NOT_AN_OBJECT)


@pytest.mark.parametrize(
    ("body", "shaped"),
    [
        (b"{}", True),
        (b"  {\n}\r\n", True),
        (b"{not json}", True),  # the worker's parse fails it
        (b"{}}", True),
        (b"x{}", False),
        (b"{} x", False),
    ],
)
def test_the_shape_check_reads_only_the_ends(body: bytes, shaped: bool) -> None:
    assert looks_like_object(body) is shaped


@pytest.mark.parametrize("body", [b"{not json}", b"[]", b"{\xff}", b'{"a": 1}}'])
def test_the_full_parse_refuses_what_is_not_a_json_object(body: bytes) -> None:
    with pytest.raises(ValueError, match="body is not a JSON object"):
        parse_payload(body)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({}, (None, None, None)),
        ({"action": "created", "installation": {"id": 1}}, ("created", 1, None)),
        ({"action": 5, "installation": {"id": "1"}, "repository": "x"}, (None, None, None)),
        ({"installation": {"id": True}, "repository": {"full_name": 3}}, (None, None, None)),
        ({"installation": [], "repository": {"full_name": "a/b"}}, (None, None, "a/b")),
    ],
)
def test_classification_tolerates_any_payload_shape(
    payload: dict[str, object], expected: tuple[object, ...]
) -> None:
    assert classify(payload) == Classification(*expected)


def test_every_example_payload_classifies(
    webhook_examples: list[tuple[str, dict[str, object]]],
) -> None:
    assert len(webhook_examples) == 329
    for name, payload in webhook_examples:
        body = json.dumps(payload).encode()
        result = read_delivery(signed_headers(body, name, "guid"), body, SECRETS)
        assert isinstance(result, Delivery), (name, result)
        assert classify(parse_payload(result.body)).action == payload.get("action")
