"""The engine: drives a run from state to state through the agents, one resumable step at a time.

Each step opens the run (taking its lock and finishing any write a crash interrupted), does the
work of the run's current state, writes its artifacts and makes exactly one transition. A run
killed anywhere resumes from its last completed state: the step that was cut short is done again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bot.agents.planner import IGNORED, make_plan
from bot.agents.resolver import (
    apply_proposal,
    build_resolution,
    deterministic_outcome,
    left_alone,
    llm_request,
)
from bot.agents.reviewer import CleanFile, ReviewedFile, ReviewLimits, review
from bot.agents.triage import adjustment_request
from bot.errors import GwiError
from bot.merge.checks import language
from bot.repo import plumbing as git
from bot.repo.analysis import MergeAnalysis, analyse
from bot.runs.bundle import SchemaRejected
from bot.runs.handle import RunHandle
from bot.runs.store import RunStore
from bot.schemas.agents import FileProposal
from bot.schemas.audit import AuditAction
from bot.schemas.base import Schema
from bot.schemas.common import format_patch_hash
from bot.schemas.plan import PlannedAction, PlanResult
from bot.schemas.resolve import FileStatus, ResolveResult
from bot.schemas.review import Severity, Verdict
from bot.schemas.run import Actor, ActorType, CapabilityMode, RunContext
from bot.schemas.state import TERMINAL, Outcome, RunState
from bot.schemas.triage import LlmAdjustment, TriageResult
from bot.scoring.rubric import score
from bot.scoring.scorer import extract_features, triage_result

if TYPE_CHECKING:
    from bot.agents.llm import LlmClient

log = logging.getLogger(__name__)
S = TypeVar("S", bound=Schema)

TRIAGE = Actor(type=ActorType.AGENT, id="triage")
PLANNER = Actor(type=ActorType.AGENT, id="planner")
RESOLVER = Actor(type=ActorType.AGENT, id="resolver")
REVIEWER = Actor(type=ActorType.AGENT, id="reviewer")
#: States where the engine stops: a person must act, or the run is over.
STOPS = TERMINAL | {RunState.AWAITING_APPROVAL}
MAX_REPLY_IN_AUDIT = 64 * 1024


@dataclass
class Engine:
    store: RunStore
    llm: LlmClient | None = None
    limits: ReviewLimits = field(default_factory=ReviewLimits)
    #: The git repository to work in on this host; None: the one the run recorded (one host).
    repository: Path | None = None
    _analyses: dict[tuple[str, str, str], MergeAnalysis] = field(default_factory=dict)

    # -- driving ---------------------------------------------------------------------------------
    def advance(
        self, run_id: str, on_step: Callable[[RunContext], None] | None = None
    ) -> RunContext:
        """Step until the run waits for approval or ends."""
        while True:
            ctx = self.step(run_id)
            if on_step is not None:
                on_step(ctx)
            if ctx.state in STOPS:
                return ctx

    def step(self, run_id: str) -> RunContext:
        """Do the work of the run's current state and make its one transition."""
        with self.store.open(run_id) as run:
            state = run.ctx.state
            if state in STOPS:
                return run.ctx
            if state not in _STAGES:  # applying: only the apply path may finish a push
                raise GwiError(f"run {run_id} is {state.value}: an approved apply was"
                               f" interrupted; `gwi apply {run_id}` finishes it")
            stage = _STAGES[state]
            name = stage.__name__.strip("_")
            try:
                stage(self, run)
            except SchemaRejected:
                pass  # the run is failed already, with the errors in its audit log
            except GwiError as exc:
                run.fail(f"{name}: {exc}")
            except Exception as exc:  # a bug must end the run cleanly, not leave it stuck
                log.exception("run %s failed in %s", run_id, name)
                run.fail(f"{name}: internal error ({type(exc).__name__}: {exc})")
            return run.ctx

    # -- helpers ---------------------------------------------------------------------------------
    def workspace(self, ctx: RunContext) -> Path:
        return self.repository or workspace(ctx)

    def analysis(self, ctx: RunContext) -> MergeAnalysis:
        repo = self.workspace(ctx)
        key = (str(repo), ctx.head.sha, ctx.base.sha)
        if key not in self._analyses:
            self._analyses.clear()  # one run at a time: keep memory flat
            self._analyses[key] = analyse(repo, ctx.head.sha, ctx.base.sha)
        return self._analyses[key]

    def ask(self, run: RunHandle, artifact: str, model: type[S], system: str, prompt: str,
            actor: Actor) -> S:
        """Ask the LLM for a schema's JSON; audit the exchange; validate or fail the run."""
        assert self.llm is not None
        reply = self.llm.complete_json(system=system, prompt=prompt, schema_name=model.__name__,
                                       json_schema=model.model_json_schema())
        run.record(
            AuditAction.AGENT_CALLED,
            {
                "provider": self.llm.provider.value,
                "model": self.llm.model,
                "for": artifact,
                "schema": model.__name__,
                "prompt_sha256": hashlib.sha256((system + "\n" + prompt).encode()).hexdigest(),
                "reply": reply.text[:MAX_REPLY_IN_AUDIT],
                "reply_truncated": len(reply.text) > MAX_REPLY_IN_AUDIT,
                "input_tokens": reply.input_tokens,
                "output_tokens": reply.output_tokens,
                "seconds": round(reply.duration_s, 3),
            },
            actor,
        )
        return run.accept(artifact, model, reply.text, actor)


def workspace(ctx: RunContext) -> Path:
    if ctx.workspace is None:
        raise GwiError(f"run {ctx.run_id} names no repository to work in")
    return Path(ctx.workspace)


# -- the stages: one per non-stop state ------------------------------------------------------------

def _triage(engine: Engine, run: RunHandle) -> None:
    ctx = run.ctx
    analysis = engine.analysis(ctx)
    features = extract_features(engine.workspace(ctx), analysis)
    adjustment = None
    if engine.llm is not None and analysis.files:
        base = score(features)
        system, prompt = adjustment_request(features, list(base.breakdown), base.baseline)
        adjustment = engine.ask(run, "triage.json", LlmAdjustment, system, prompt, TRIAGE)
    result = triage_result(ctx.run_id, features, adjustment)
    run.write_artifact("triage.json", result, actor=TRIAGE)
    run.transition(RunState.TRIAGED, actor=TRIAGE,
                   reason=f"complexity {result.final}/10, route {result.route.value}")


def _plan(engine: Engine, run: RunHandle) -> None:
    triage = _need(run, "triage.json", TriageResult)
    plan, markdown = make_plan(run.run_id, triage, engine.analysis(run.ctx),
                               llm=engine.llm is not None, ignored=run.ctx.options.ignores)
    run.write_artifact("plan.json", plan, actor=PLANNER)
    run.write_artifact("plan.md", markdown, actor=PLANNER)
    run.transition(RunState.PLANNED, actor=PLANNER, reason=plan.summary)


def _route(engine: Engine, run: RunHandle) -> None:
    analysis = engine.analysis(run.ctx)
    if analysis.clean:
        run.transition(RunState.REVIEW, reason="nothing to resolve")
    else:
        run.transition(RunState.RESOLVING,
                       reason=f"{len(analysis.files)} conflicted file(s) to resolve")


def _resolve(engine: Engine, run: RunHandle) -> None:
    analysis = engine.analysis(run.ctx)
    plan = _need(run, "plan.json", PlanResult)
    actions = {f.path: f.action for f in plan.files}
    outcomes = {c.path: deterministic_outcome(c) for c in analysis.files}
    for conflict in analysis.files:
        if actions.get(conflict.path) is PlannedAction.HUMAN and run.ctx.options.ignores(
            conflict.path
        ):
            outcomes[conflict.path] = left_alone(conflict, IGNORED)
            continue
        if actions.get(conflict.path) is PlannedAction.LLM and engine.llm is not None:
            system, prompt = llm_request(conflict)
            proposal = engine.ask(run, "resolve.json", FileProposal, system, prompt, RESOLVER)
            outcomes[conflict.path] = apply_proposal(outcomes[conflict.path], proposal,
                                                     engine.llm.model)
    resolution = build_resolution(engine.workspace(run.ctx), run.run_id, analysis, outcomes)
    run.write_artifact("patch.diff", resolution.patch, actor=RESOLVER)
    run.write_artifact("resolve.json", resolution.result, actor=RESOLVER)
    r = resolution.result
    run.transition(
        RunState.REVIEW, actor=RESOLVER,
        reason=f"{r.files_resolved} of {r.files_resolved + r.files_unresolved} conflicted file(s)"
        f" resolved; patch {format_patch_hash(r.patch_sha256)}",
    )


def _review(engine: Engine, run: RunHandle) -> None:
    patch = run.read_bytes("patch.diff")
    if patch is None:
        run.transition(RunState.DONE, outcome=Outcome.NO_CHANGES_NEEDED,
                       reason="the base merges into the head without conflicts")
        return
    resolved = _need(run, "resolve.json", ResolveResult)
    analysis = engine.analysis(run.ctx)
    repo = engine.workspace(run.ctx)
    tree = git.apply_patch_to_tree(repo, git.tree_of(repo, analysis.head_sha), patch)
    status = {f.path: f for f in resolved.files}
    merged = git.read_paths(repo, tree, [c.path for c in analysis.files])
    files = [
        ReviewedFile(path=c.path, status=status[c.path].status,
                     explanation=status[c.path].explanation, sides=c.sides,
                     merged=merged[c.path])
        for c in analysis.files
    ]
    clean, unchecked = _clean_files(repo, analysis, tree, engine.limits.max_clean_files)
    result = review(run.run_id, patch, resolved, files, engine.limits, clean, unchecked)
    run.write_artifact("review.json", result, actor=REVIEWER)
    if result.verdict is Verdict.APPROVABLE and run.ctx.capabilities is CapabilityMode.READ_ONLY:
        run.transition(RunState.DONE, actor=REVIEWER, outcome=Outcome.HANDED_OFF,
                       reason=f"patch {format_patch_hash(resolved.patch_sha256)} is ready, but"
                       " gwi may not push to this branch: apply it by hand")
        return
    if result.verdict is Verdict.APPROVABLE:
        run.transition(RunState.AWAITING_APPROVAL, actor=REVIEWER,
                       reason=f"patch {format_patch_hash(resolved.patch_sha256)} is ready for"
                       " approval")
        return
    blockers = [f for f in result.findings if f.severity is Severity.BLOCKER]
    unresolved = sum(f.status is FileStatus.UNRESOLVED for f in resolved.files)
    run.transition(
        RunState.DONE, actor=REVIEWER, outcome=Outcome.NEEDS_HUMAN,
        reason=f"{len(blockers)} blocker(s), {unresolved} file(s) left to a person: "
        + "; ".join(f"{f.path or 'patch'}: {f.message}" for f in blockers[:3])[:3000],
    )


def _clean_files(repo: Path, analysis: MergeAnalysis, tree: str,
                 limit: int) -> tuple[list[CleanFile], int]:
    """The files the patch changes that git merged without a conflict and that have a
    parser (at most ``limit``, and how many more there were), with their three versions."""
    conflicted = {c.path for c in analysis.files}
    head_tree = git.tree_of(repo, analysis.head_sha)
    paths = [p for p in git.changed_paths(repo, head_tree, tree)
             if p not in conflicted and language(p) is not None]
    checked = paths[:limit]
    heads = git.read_paths(repo, head_tree, checked)
    others = git.read_paths(repo, git.tree_of(repo, analysis.base_sha), checked)
    merged = git.read_paths(repo, tree, checked)
    return ([CleanFile(p, heads[p], others[p], merged[p]) for p in checked],
            len(paths) - len(checked))


def _need(run: RunHandle, name: str, model: type[S]) -> S:
    value = run.read_model(name, model)
    if value is None:
        raise GwiError(f"{name} is missing: an earlier step did not complete")
    return value


_STAGES: dict[RunState, Callable[[Engine, RunHandle], None]] = {
    RunState.QUEUED: _triage,
    RunState.TRIAGED: _plan,
    RunState.PLANNED: _route,
    RunState.RESOLVING: _resolve,
    RunState.REVIEW: _review,
}
