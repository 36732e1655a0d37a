"""Valid examples of every artifact, for tests to start from and then break one field at a time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.runs.signing import Signer
from bot.schemas.approval import ApprovalRecord, signed_bytes_of
from bot.schemas.common import sha256_hex

RUN_ID = "20260101T000000Z-abcdefghijklmnopqrst"
BASE_SHA = "a" * 40
HEAD_SHA = "b" * 40
PATCH = b"--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-x\n+y\n"
PATCH_SHA = sha256_hex(PATCH)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def context_fields(**over: Any) -> dict[str, Any]:
    """What `RunStore.create` needs: everything but id, times, state and history."""
    fields: dict[str, Any] = {
        "repository": {"owner": "octo", "name": "app", "full_name": "octo/app"},
        "pull_request": {"number": 7, "url": "https://github.com/octo/app/pull/7"},
        "base": {"ref": "main", "sha": BASE_SHA},
        "head": {"ref": "feature", "sha": HEAD_SHA},
        "initiator": {"type": "user", "id": "octocat"},
        "installation_id": 42,
        "agents": {"provider": "offline"},
        "capabilities": "gated_write",
    }
    fields.update(over)
    return fields


def run_context(**over: Any) -> dict[str, Any]:
    doc = {
        **context_fields(),
        "schema_version": 1,
        "run_id": RUN_ID,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
        "state": "triaged",
        "history": [
            {"state": "queued", "at": T0.isoformat(), "reason": "created"},
            {"state": "triaged", "at": T0.isoformat(), "reason": "scored"},
        ],
        "outcome": None,
        "error": None,
        "audit_seq": 3,
    }
    doc.update(over)
    return doc


def features(**over: Any) -> dict[str, Any]:
    doc = {
        "files": [
            {"path": "app.py", "status": "modified", "kind": "source", "added": 3, "removed": 1},
            {"path": "docs/x.md", "status": "added", "kind": "docs", "added": 2, "removed": 0},
        ],
        "files_changed": 2,
        "lines_added": 5,
        "lines_removed": 1,
        "renames": 0,
        "deletions": 0,
        "kind_counts": {"source": 1, "docs": 1},
        "merge": {
            "conflicted_files": 1,
            "conflict_regions": 2,
            "conflict_lines": 9,
            "max_regions_in_file": 2,
            "regions_resolvable": 1,
        },
    }
    doc.update(over)
    return doc


def triage(**over: Any) -> dict[str, Any]:
    doc = {
        "run_id": RUN_ID,
        "features": features(),
        "breakdown": [
            {"rule": "base", "points": 1.0, "detail": "every change"},
            {"rule": "conflict_regions", "points": 1.5, "detail": "2 regions"},
        ],
        "raw_score": 2.5,
        "baseline": 3,
        "adjustment": {"value": 0, "reasons": []},
        "final": 3,
        "route": "deterministic",
    }
    doc.update(over)
    return doc


def plan(**over: Any) -> dict[str, Any]:
    doc = {
        "run_id": RUN_ID,
        "route": "deterministic",
        "summary": "1 conflicted file; the resolver settles it",
        "files": [
            {"path": "app.py", "action": "resolver", "conflicted": True, "regions": 2,
             "regions_resolvable": 2},
            {"path": "docs/x.md", "action": "keep", "conflicted": False, "regions": 0,
             "regions_resolvable": 0},
        ],
        "needs_human": False,
    }
    doc.update(over)
    return doc


def resolve(**over: Any) -> dict[str, Any]:
    doc = {
        "run_id": RUN_ID,
        "base_sha": BASE_SHA,
        "head_sha": HEAD_SHA,
        "files": [
            {"path": "app.py", "status": "resolved", "resolver": "deterministic",
             "strategies": ["both_appended"], "confidence": 95, "explanation": "kept both",
             "regions": 2, "regions_resolved": 2},
        ],
        "files_total": 1,
        "files_resolved": 1,
        "files_unresolved": 0,
        "clean": True,
        "patch_sha256": PATCH_SHA,
        "patch_bytes": len(PATCH),
    }
    doc.update(over)
    return doc


def review(**over: Any) -> dict[str, Any]:
    doc = {
        "run_id": RUN_ID,
        "patch_sha256": PATCH_SHA,
        "checks": ["conflict_markers", "syntax", "lost_lines", "secrets", "size"],
        "findings": [
            {"check": "size", "severity": "info", "message": "patch is 20 bytes"},
        ],
        "blockers": 0,
        "warnings": 0,
        "verdict": "approvable",
    }
    doc.update(over)
    return doc


def approval(signer: Signer, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": 1,
        "run_id": RUN_ID,
        "approver": {"kind": "local_user", "login": "octocat"},
        "approved_at": T0.isoformat(),
        "scope": ["commit", "push"],
        "patch_sha256": PATCH_SHA,
        "base_sha": BASE_SHA,
        "head_sha": HEAD_SHA,
        "comment": None,
        "delivery_id": None,
    }
    doc.update(over)
    unsigned = ApprovalRecord.model_validate(
        {**doc, "signature": {"public_key": "0" * 64, "value": "0" * 128}}
    ).model_dump(mode="json", exclude={"signature"})
    doc["signature"] = {
        "algorithm": "ed25519",
        "public_key": signer.public_key_hex,
        "value": signer.sign(signed_bytes_of(unsigned)),
    }
    return doc
