"""Everything a person reads about one run, loaded and validated in one go."""

from __future__ import annotations

from dataclasses import dataclass

from bot.runs.audit import ChainError
from bot.runs.store import RunStore
from bot.schemas.approval import ApprovalRecord
from bot.schemas.common import format_patch_hash
from bot.schemas.plan import PlanResult
from bot.schemas.resolve import ResolveResult
from bot.schemas.review import ReviewResult
from bot.schemas.run import RunContext
from bot.schemas.triage import TriageResult


@dataclass(frozen=True)
class RunView:
    ctx: RunContext
    triage: TriageResult | None
    plan: PlanResult | None
    resolve: ResolveResult | None
    review: ReviewResult | None
    approval: ApprovalRecord | None
    patch: bytes | None
    #: The audit log's head (seq, hash) when this view was read: published as the anchor a
    #: bundle must still hold later (None when the log is damaged).
    anchor: tuple[int, str] | None = None

    @classmethod
    def load(cls, store: RunStore, run_id: str) -> RunView:
        try:
            chain = store.read_chain(run_id)
        except ChainError:
            chain = None
        anchor = (chain.events[-1].seq, chain.events[-1].hash) if chain and chain.events else None
        return cls(
            ctx=store.read_context(run_id),
            triage=store.read_model(run_id, "triage.json", TriageResult),
            plan=store.read_model(run_id, "plan.json", PlanResult),
            resolve=store.read_model(run_id, "resolve.json", ResolveResult),
            review=store.read_model(run_id, "review.json", ReviewResult),
            approval=store.read_model(run_id, "approval.json", ApprovalRecord),
            patch=store.read_bytes(run_id, "patch.diff"),
            anchor=anchor,
        )

    @property
    def patch_hash(self) -> str | None:
        """``sha256:<hex>`` of the patch, as people copy it."""
        return format_patch_hash(self.resolve.patch_sha256) if self.resolve else None
