"""Approval records: checking that an approval may be given, signing it, and re-verifying it at
the moment of applying. Shared by the local `gwi approve`/`gwi apply` and the GitHub gate."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.errors import GwiError
from bot.runs.handle import RunHandle
from bot.runs.signing import Signer, verify_signature
from bot.schemas.approval import APPROVAL_SCOPE, ApprovalRecord, signed_bytes_of
from bot.schemas.common import format_patch_hash, parse_patch_hash, sha256_hex
from bot.schemas.resolve import ResolveResult
from bot.schemas.review import ReviewResult, Verdict
from bot.schemas.state import RunState


class ApprovalRefused(GwiError):
    """An approval that does not hold; ``reason`` is short and safe to show to anyone."""

    def __init__(self, reason: str, *, code: str) -> None:
        super().__init__(reason, exit_code=1)
        self.reason = reason
        self.code = code  # a stable name for the audit log and tests


def current_patch_hash(run: RunHandle) -> str:
    """The sha256 of ``patch.diff`` as it is on disk now, if the run has a patch."""
    patch = run.read_bytes("patch.diff")
    if patch is None:
        raise ApprovalRefused("this run has no patch to approve", code="no_patch")
    return sha256_hex(patch)


def check_approvable(run: RunHandle, hash_text: str) -> str:
    """The 64 hex digits of the approved hash, if it names this run's current, reviewed patch.

    Checked in this order so that the reply says the most useful thing: the form of the hash,
    the run's state, the review, then the hash itself (a prefix, another run's or a stale hash
    are all simply "not this run's patch").
    """
    try:
        digest = parse_patch_hash(hash_text.strip())
    except ValueError as exc:
        raise ApprovalRefused(str(exc), code="malformed_hash") from None
    state = run.ctx.state
    if state is not RunState.AWAITING_APPROVAL:
        raise ApprovalRefused(
            f"the run is {state.value}, not awaiting approval", code="not_awaiting_approval"
        )
    review = run.read_model("review.json", ReviewResult)
    if review is None or review.verdict is not Verdict.APPROVABLE:
        raise ApprovalRefused("the review found blockers: this patch cannot be approved",
                              code="review_blocked")
    current = current_patch_hash(run)
    resolved = run.read_model("resolve.json", ResolveResult)
    if resolved is None or resolved.patch_sha256 != current or review.patch_sha256 != current:
        raise ApprovalRefused("the run's patch no longer matches its review", code="patch_changed")
    if digest != current:
        raise ApprovalRefused(
            f"{format_patch_hash(digest)} is not the patch of this run (its patch is"
            f" {format_patch_hash(current)})",
            code="wrong_hash",
        )
    return digest


def sign_approval(signer: Signer, fields: Mapping[str, Any]) -> ApprovalRecord:
    """Build the record from its fields (everything but the signature) and sign it."""
    unsigned = dict(fields)
    unsigned.setdefault("schema_version", 1)
    unsigned["scope"] = [s.value for s in APPROVAL_SCOPE]
    placeholder = {"public_key": "0" * 64, "value": "0" * 128}
    draft = ApprovalRecord.model_validate({**unsigned, "signature": placeholder})
    payload = draft.model_dump(mode="json", exclude={"signature"})
    signature = {"algorithm": "ed25519", "public_key": signer.public_key_hex,
                 "value": signer.sign(signed_bytes_of(payload))}
    return ApprovalRecord.model_validate({**payload, "signature": signature})


def verify_approval(run: RunHandle, signer: Signer) -> ApprovalRecord:
    """The run's approval, re-checked now: signed by our key, for this run, its head and base,
    and for the exact bytes of ``patch.diff`` on disk. Anything else refuses."""
    record = run.read_model("approval.json", ApprovalRecord)
    if record is None:
        raise ApprovalRefused("the run has no approval", code="no_approval")
    sig = record.signature
    if sig.public_key != signer.public_key_hex or not verify_signature(
        sig.public_key, sig.value, record.signed_bytes()
    ):
        raise ApprovalRefused("the approval record's signature is not valid",
                              code="bad_signature")
    ctx = run.ctx
    if record.run_id != ctx.run_id:
        raise ApprovalRefused("the approval is for another run", code="other_run")
    if record.head_sha != ctx.head.sha or record.base_sha != ctx.base.sha:
        raise ApprovalRefused("the approval is for another head or base", code="other_commits")
    if current_patch_hash(run) != record.patch_sha256:
        raise ApprovalRefused("patch.diff changed after it was approved", code="patch_tampered")
    return record


def approval_fields(run: RunHandle, digest: str, approver: Mapping[str, Any],
                    at: datetime) -> dict[str, Any]:
    ctx = run.ctx
    return {
        "run_id": ctx.run_id,
        "approver": dict(approver),
        "approved_at": at,
        "patch_sha256": digest,
        "base_sha": ctx.base.sha,
        "head_sha": ctx.head.sha,
    }
