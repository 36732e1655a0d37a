"""The planner: what will happen to each file and why a person must look, from the merge
analysis (deterministic; it is the same offline and with an LLM)."""

from __future__ import annotations

from collections.abc import Callable

from bot.repo.analysis import ConflictKind, FileConflict, MergeAnalysis, surfaced_note
from bot.schemas.plan import FilePlan, PlannedAction, PlanResult, Risk
from bot.schemas.routing import Route
from bot.schemas.triage import ChangeFeatures, FileKind, TriageResult
from bot.scoring.paths import classify

LARGE_CONFLICT_LINES = 200

_KIND_RISKS: dict[FileKind, Risk] = {
    FileKind.SECURITY: Risk.SECURITY_SENSITIVE,
    FileKind.SECRETS: Risk.SECRETS_MATERIAL,
    FileKind.CI: Risk.CI_WORKFLOW,
    FileKind.DEPENDENCY_MANIFEST: Risk.DEPENDENCY_CHANGE,
    FileKind.LOCKFILE: Risk.LOCKFILE,
    FileKind.MIGRATION: Risk.MIGRATION,
    FileKind.BINARY: Risk.BINARY_FILE,
    FileKind.GENERATED: Risk.GENERATED_FILE,
}


def _risks(path: str, conflict: FileConflict | None) -> list[Risk]:
    risks = []
    kind_risk = _KIND_RISKS.get(classify(path))
    if kind_risk:
        risks.append(kind_risk)
    if conflict is not None:
        if conflict.kind is ConflictKind.UNMERGEABLE:
            risks.append(Risk.UNMERGEABLE)
        elif conflict.conflict_lines > LARGE_CONFLICT_LINES:
            risks.append(Risk.LARGE_CONFLICT)
        from bot.merge.checks import language

        if conflict.kind is ConflictKind.CONTENT and language(path) is None:
            risks.append(Risk.UNVERIFIED_LANGUAGE)
    return risks


IGNORED = "the repository's .github/gwi.yml tells gwi to leave this path alone"


def _file_plan(conflict: FileConflict, llm: bool, route: Route, ignored: bool) -> FilePlan:
    risks = _risks(conflict.path, conflict)

    def planned(action: PlannedAction, *why: str) -> FilePlan:
        return FilePlan(path=conflict.path, action=action, conflicted=True,
                        regions=conflict.regions, regions_resolvable=conflict.regions_resolved,
                        risks=risks, human_reasons=list(why))

    if ignored:
        return planned(PlannedAction.HUMAN, IGNORED)
    if conflict.kind is ConflictKind.UNMERGEABLE:
        return planned(PlannedAction.HUMAN, f"cannot be merged as text: {conflict.reason}")
    if conflict.resolved:
        assert conflict.result is not None
        return planned(PlannedAction.RESOLVER).model_copy(
            update={"confidence": conflict.result.confidence})
    left = conflict.regions - conflict.regions_resolved
    if llm and route is Route.AGENT:
        return planned(PlannedAction.LLM)
    why = (f"{left} of {conflict.regions} conflict regions have no provably safe resolution"
           + surfaced_note(conflict))
    if llm and route is Route.HUMAN:
        why += " and the score routes this run to a person, not an LLM"
    return planned(PlannedAction.HUMAN, why)


def make_plan(
    run_id: str,
    triage: TriageResult,
    analysis: MergeAnalysis,
    *,
    llm: bool,
    ignored: Callable[[str], bool] = lambda path: False,
) -> tuple[PlanResult, str]:
    """The plan and its Markdown twin. ``llm`` says whether an LLM provider is configured;
    ``ignored`` names the paths gwi must leave to a person."""
    conflicted = {c.path: c for c in analysis.files}
    files = [_file_plan(c, llm, triage.route, ignored(c.path)) for c in analysis.files]
    files += [
        FilePlan(path=f.path, action=PlannedAction.KEEP, conflicted=False, regions=0,
                 regions_resolvable=0, risks=_risks(f.path, None))
        for f in triage.features.files
        if f.path not in conflicted and _risks(f.path, None)
    ]
    files.sort(key=lambda f: f.path)
    human_reasons = []
    if triage.route is Route.HUMAN:
        human_reasons.append(
            f"complexity {triage.final}/10 routes this change to a person: review the patch"
            " with care before approving it"
        )
    plan = PlanResult(
        run_id=run_id,
        route=triage.route,
        summary=_summary(analysis, files),
        files=files,
        needs_human=any(f.action is PlannedAction.HUMAN for f in files) or bool(human_reasons),
        human_reasons=human_reasons,
    )
    return plan, render_plan(plan, triage.features)


def _summary(analysis: MergeAnalysis, files: list[FilePlan]) -> str:
    if analysis.up_to_date:
        return "The head already contains the base: nothing to merge."
    if analysis.clean:
        return "The base merges into the head without conflicts: nothing to resolve."
    counts = {a: sum(f.action is a for f in files if f.conflicted) for a in PlannedAction}
    parts = [f"{len(analysis.files)} conflicted file(s)"]
    if counts[PlannedAction.RESOLVER]:
        parts.append(f"{counts[PlannedAction.RESOLVER]} settled by the deterministic resolver")
    if counts[PlannedAction.LLM]:
        parts.append(f"{counts[PlannedAction.LLM]} proposed by the LLM, then reviewed")
    if counts[PlannedAction.HUMAN]:
        parts.append(f"{counts[PlannedAction.HUMAN]} left to a person")
    return "; ".join(parts) + "."


def render_plan(plan: PlanResult, features: ChangeFeatures) -> str:
    lines = [
        "# Plan",
        "",
        plan.summary,
        "",
        (f"Route: **{plan.route.value}**. The change touches {features.files_changed} file(s),"
        f" +{features.lines_added} -{features.lines_removed}."),
        "",
    ]
    if plan.files:
        lines += ["| file | action | regions (resolvable) | confidence | risks |",
                  "| --- | --- | --- | --- | --- |"]
        for f in plan.files:
            risks = ", ".join(r.value for r in f.risks) or "-"
            regions = f"{f.regions} ({f.regions_resolvable})" if f.conflicted else "-"
            trust = f"{f.confidence}%" if f.confidence is not None else "-"
            lines.append(f"| `{f.path}` | {f.action.value} | {regions} | {trust} | {risks} |")
        lines.append("")
    reasons = list(plan.human_reasons) + [
        f"`{f.path}`: {reason}" for f in plan.files for reason in f.human_reasons
    ]
    if reasons:
        lines += ["## Why a person must look", ""] + [f"- {r}" for r in reasons] + [""]
    by_hand = [f.path for f in plan.files if f.action is PlannedAction.HUMAN]
    if by_hand:
        lines += ["## Next step", "",
                  "Resolve these files by hand, on the head branch with the base merged in:", ""]
        lines += [f"- `{path}`" for path in by_hand]
        lines += ["", ("gwi's resolutions of the other files are in this run's `patch.diff`:"
                  " take them as they are (`git apply` it on the head, then edit the files"
                  " above), or approve the run once nothing is left to a person."), ""]
    return "\n".join(lines)
