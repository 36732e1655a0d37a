"""Every artifact schema accepts a valid document and refuses each kind of broken one."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from bot.runs.signing import Signer
from bot.schemas import ARTIFACT_SCHEMAS
from bot.schemas.approval import ApprovalRecord
from bot.schemas.common import format_patch_hash, parse_patch_hash
from bot.schemas.plan import PlanResult
from bot.schemas.resolve import ResolveResult
from bot.schemas.review import ReviewResult
from bot.schemas.run import RunContext
from bot.schemas.triage import LlmAdjustment, TriageResult, round_half_up
from tests import builders as b


@pytest.fixture
def signer() -> Signer:
    return Signer(Ed25519PrivateKey.generate())


def test_every_json_artifact_has_a_schema() -> None:
    assert set(ARTIFACT_SCHEMAS) == {
        "run.json", "triage.json", "plan.json", "resolve.json", "review.json", "approval.json"
    }


@pytest.mark.parametrize(
    ("model", "doc"),
    [
        (RunContext, b.run_context()),
        (TriageResult, b.triage()),
        (PlanResult, b.plan()),
        (ResolveResult, b.resolve()),
        (ReviewResult, b.review()),
    ],
)
def test_valid_documents_validate_and_round_trip(model: Any, doc: dict[str, Any]) -> None:
    value = model.model_validate(doc)
    assert model.model_validate_json(value.model_dump_json()) == value


def test_valid_approval_round_trips(signer: Signer) -> None:
    value = ApprovalRecord.model_validate(b.approval(signer))
    assert ApprovalRecord.model_validate_json(value.model_dump_json()) == value


INVALID: list[tuple[Any, dict[str, Any], str]] = [
    # run.json
    (RunContext, b.run_context(state="planned"), "not the last history entry"),
    (RunContext, b.run_context(run_id="../../etc"), "run_id"),
    (RunContext, b.run_context(unknown=1), "Extra inputs"),
    (RunContext, b.run_context(state="done", history=[
        {"state": "queued", "at": "2026-01-01T00:00:00Z"},
        {"state": "done", "at": "2026-01-01T00:00:00Z"}], outcome="applied"),
     "does not allow"),
    (RunContext, b.run_context(history=[
        {"state": "queued", "at": "2026-01-01T00:00:00Z"},
        {"state": "triaged", "at": "2025-01-01T00:00:00Z"}]), "backwards"),
    (RunContext, b.run_context(outcome="applied"), "no outcome yet"),
    (RunContext, b.run_context(created_at="2026-01-01T00:00:00"), "timezone"),
    (RunContext, b.run_context(base={"ref": "main", "sha": "xyz"}), "pattern"),
    (RunContext, b.run_context(repository={"owner": "a", "name": "b", "full_name": "a/c"}),
     "full_name"),
    (RunContext, b.run_context(agents={"provider": "anthropic"}), "needs a model"),
    (RunContext, b.run_context(state="failed", history=[
        {"state": "queued", "at": "2026-01-01T00:00:00Z"},
        {"state": "failed", "at": "2026-01-01T00:00:00Z"}], outcome="error"), "carries an error"),
    # triage.json
    (TriageResult, b.triage(final=4), "final must be"),
    (TriageResult, b.triage(baseline=11), "less than or equal to 10"),
    (TriageResult, b.triage(raw_score=3.5), "breakdown's sum"),
    (TriageResult, b.triage(route="human"), "routes to"),
    (TriageResult, b.triage(adjustment={"value": 3, "reasons": ["ambiguous_intent"]}),
     "less than or equal to 2"),
    (TriageResult, b.triage(features=b.features(files_changed=3)), "files_changed"),
    (TriageResult, b.triage(features=b.features(kind_counts={"source": 2})), "kind_counts"),
    (TriageResult, b.triage(features=b.features(merge={
        "conflicted_files": 1, "conflict_regions": 1, "conflict_lines": 3,
        "max_regions_in_file": 1, "regions_resolvable": 2})), "more resolvable"),
    # plan.json
    (PlanResult, b.plan(needs_human=True), "needs_human"),
    (PlanResult, b.plan(files=[{"path": "a", "action": "human", "conflicted": True,
                                "regions": 1, "regions_resolvable": 0}]), "says why"),
    (PlanResult, b.plan(files=[{"path": "a", "action": "resolver", "conflicted": True,
                                "regions": 2, "regions_resolvable": 1}]), "every region"),
    (PlanResult, b.plan(files=list(reversed(b.plan()["files"]))), "sorted"),
    # resolve.json
    (ResolveResult, b.resolve(files_total=2), "files_total"),
    (ResolveResult, b.resolve(clean=False), "clean means"),
    (ResolveResult, b.resolve(patch_sha256="sha256:" + b.PATCH_SHA), "pattern"),
    (ResolveResult, b.resolve(files=[{**b.resolve()["files"][0], "confidence": 101}]),
     "less than or equal to 100"),
    (ResolveResult, b.resolve(files=[{**b.resolve()["files"][0], "regions_resolved": 1}]),
     "every region resolved"),
    # review.json
    (ReviewResult, b.review(verdict="blocked"), "verdict"),
    (ReviewResult, b.review(findings=[{"check": "secrets", "severity": "blocker",
                                       "message": "key"}], blockers=1, verdict="blocked",
                            checks=["syntax"]), "was not run"),
    (ReviewResult, b.review(blockers=1), "blockers"),
]


@pytest.mark.parametrize(("model", "doc", "message"), INVALID)
def test_invalid_documents_are_refused(model: Any, doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        model.model_validate(doc)


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"scope": ["push"]}, "scope"),
        ({"approver": {"kind": "github_user", "login": "octocat"}}, "id and role"),
        ({"delivery_id": "abc"}, "no comment or delivery"),
        ({"patch_sha256": "ABC"}, "pattern"),
    ],
)
def test_invalid_approvals_are_refused(signer: Signer, over: dict[str, Any], message: str) -> None:
    doc = b.approval(signer)
    doc.update(over)
    with pytest.raises(ValidationError, match=message):
        ApprovalRecord.model_validate(doc)


def test_adjustment_reasons_must_fit_the_direction() -> None:
    LlmAdjustment(value=1, reasons=["security_risk"])  # type: ignore[list-item]
    LlmAdjustment(value=-2, reasons=["well_tested", "documented"])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="raising set"):
        LlmAdjustment(value=1, reasons=["well_tested"])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="lowering set"):
        LlmAdjustment(value=-1, reasons=[])
    with pytest.raises(ValidationError):
        LlmAdjustment(value=1, reasons=["made_up"])  # type: ignore[list-item]


def test_scores_clamp_and_round_half_up() -> None:
    assert round_half_up(2.5) == 3 and round_half_up(2.49) == 2
    doc = b.triage(
        breakdown=[{"rule": "many", "points": 12.0, "detail": "x"}], raw_score=12.0,
        baseline=10, adjustment={"value": 2, "reasons": ["security_risk"]}, final=10,
        route="human",
    )
    assert TriageResult.model_validate(doc).final == 10


def test_schemas_are_frozen() -> None:
    value = RunContext.model_validate(b.run_context())
    with pytest.raises(ValidationError):
        value.state = "done"  # type: ignore[assignment]


def test_patch_hash_text_form() -> None:
    digest = b.PATCH_SHA
    assert parse_patch_hash(format_patch_hash(digest)) == digest
    for bad in (digest, "sha256:" + digest[:12], "sha256:" + digest.upper(), "sha1:" + digest,
                "sha256:" + digest + "0"):
        with pytest.raises(ValueError):
            parse_patch_hash(bad)
