"""What gwi shows on GitHub, as pure functions of a run: the check-run and the PR comment."""

from __future__ import annotations

from dataclasses import dataclass

from bot.github.models import CheckConclusion, CheckOutput, CheckStatus
from bot.github.resolution_view import fenced, resolution_view
from bot.runs.view import RunView
from bot.schemas.resolve import FileStatus
from bot.schemas.review import Severity
from bot.schemas.state import Outcome, RunState

CHECK_NAME = "gwi"
#: The hidden marker that finds gwi's one living comment on a pull request.
COMMENT_MARKER = "status"
#: GitHub caps check-run summaries and texts at 65,535 characters, comments at 65,536.
MAX_SUMMARY = 60_000
MAX_COMMENT = 60_000
MAX_DIFF_IN_COMMENT = 40_000
#: The resolution view gets this much of a comment; whole files only.
MAX_VIEW_IN_COMMENT = 15_000

_HELP = """\
**gwi** resolves this pull request's merge conflicts with its base branch and pushes only what
{who} approved, byte for byte. Commands (alone on a line):

- `/gwi run`: run again on the current head
- `/gwi abort`: stop the current run
- `/gwi status`: where the current run is
- `/gwi approve sha256:<patch hash>`: approve the exact patch gwi proposed, so it pushes it
- `/gwi help`: this text
"""


def approvers(role: str) -> str:
    """Who may approve, as the repository's `.github/gwi.yml` sets it."""
    return f"a person with the {role} role or higher"


def help_text(role: str) -> str:
    return _HELP.format(who=approvers(role))

_STAGE_TEXT: dict[RunState, str] = {
    RunState.QUEUED: "queued",
    RunState.TRIAGED: "triaged; planning",
    RunState.PLANNED: "planned; resolving",
    RunState.RESOLVING: "resolving conflicts",
    RunState.REVIEW: "reviewing the result",
    RunState.AWAITING_APPROVAL: "awaiting approval",
    RunState.APPLYING: "pushing the approved patch",
}


@dataclass(frozen=True)
class CheckView:
    status: CheckStatus
    conclusion: CheckConclusion | None
    output: CheckOutput


def approve_line(view: RunView) -> str | None:
    return f"/gwi approve {view.patch_hash}" if view.patch_hash else None


def _route_text(view: RunView) -> str:
    """The route, and what it really means when no LLM is configured."""
    assert view.triage is not None
    route = view.triage.route.value
    if route == "agent" and view.ctx.agents.provider.value == "offline":
        return "agent, but no LLM is configured: only provable resolutions are proposed"
    return route


def needs_human_next_step(view: RunView) -> str:
    """What a person does with a run that left conflicts: which files, and the rest."""
    assert view.plan is not None
    by_hand = [f.path for f in view.plan.files if f.action.value == "human"]
    named = ", ".join(f"`{p}`" for p in by_hand) or "the files listed above"
    return (f"resolve {named} by hand on the pull request's branch (merge `{view.ctx.base.ref}`"
            " into it and edit the conflict markers); gwi's resolutions of the other files are"
            " in the run's patch.diff, to take as they are. Then push; gwi runs again on the"
            " new head.")


def check_view(view: RunView, *, page: str | None = None) -> CheckView:
    """The check-run for a run in any state; ``page`` is the run page's URL, when pages are on."""
    ctx = view.ctx
    state = ctx.state
    if state not in (RunState.DONE, RunState.ABORTED, RunState.FAILED, RunState.AWAITING_APPROVAL):
        status: CheckStatus = "queued" if state is RunState.QUEUED else "in_progress"
        title = f"gwi: {_STAGE_TEXT[state]}"
        return CheckView(status, None, CheckOutput(title=title, summary=_summary(view, page)))
    conclusion: CheckConclusion
    if state is RunState.AWAITING_APPROVAL:
        conclusion, title = "action_required", "Conflicts resolved: approve the patch to push it"
    elif ctx.outcome is Outcome.NO_CHANGES_NEEDED:
        conclusion, title = "success", "No conflicts with the base branch"
    elif ctx.outcome is Outcome.APPLIED:
        conclusion, title = "success", "Approved patch pushed"
    elif ctx.outcome in (Outcome.NEEDS_HUMAN, Outcome.HANDED_OFF):
        conclusion = "neutral"
        title = ("Some conflicts need a person" if ctx.outcome is Outcome.NEEDS_HUMAN
                 else "Patch ready: apply it by hand")
    elif state is RunState.ABORTED:
        # GitHub alone may set `stale`; a superseded or stale run is shown as cancelled.
        conclusion = "cancelled"
        title = {Outcome.SUPERSEDED: "Superseded by a newer run",
                 Outcome.STALE: "Stale: the branch moved, nothing was pushed"}.get(
            ctx.outcome or Outcome.CANCELLED, "Cancelled")
    else:
        conclusion, title = "failure", "gwi failed"
    return CheckView("completed", conclusion, CheckOutput(title=title, summary=_summary(view, page),
                                                          text=_details(view)))


def _summary(view: RunView, page: str | None) -> str:
    ctx = view.ctx
    lines = [f"Run `{ctx.run_id}`: **{ctx.state.value}**"
             + (f" ({ctx.outcome.value})" if ctx.outcome else ""), ""]
    if page:
        lines += [(f"**[The run page]({page})** shows the whole patch, each region gwi decided"
                   " beside git's conflict, and the audit log, verified."), ""]
    if view.anchor is not None:  # first, so no cut of a long summary loses it
        seq, digest = view.anchor
        lines += [(f"Audit anchor `{seq}:{digest}`: a copy of the bundle is checked against it"
                   f" with `gwi runs verify BUNDLE --anchor {seq}:{digest}`."), ""]
    if ctx.error:
        lines += [f"Error: {ctx.error}", ""]
    if view.triage:
        t = view.triage
        lines.append(f"Complexity **{t.final}/10** (route: {_route_text(view)}).")
    if view.plan:
        lines.append(view.plan.summary)
    if view.review:
        r = view.review
        lines.append(f"Review: **{r.verdict.value}** ({r.blockers} blocker(s),"
                     f" {r.warnings} warning(s)).")
    if ctx.state is RunState.AWAITING_APPROVAL and view.patch_hash:
        lines += ["", (f"{approvers(ctx.options.approver_role).capitalize()} approves by"
                  " commenting exactly:"), "",
                  f"    {approve_line(view)}"]
    last = ctx.history[-1].reason
    if last:
        lines += ["", f"Last step: {last}"]
    return "\n".join(lines)[:MAX_SUMMARY]


def _details(view: RunView) -> str | None:
    if not view.review and not view.triage:
        return None
    parts = []
    if view.triage:
        parts.append("### Score\n\n" + "\n".join(
            f"- `{h.rule}` {h.points:+g}: {h.detail}" for h in view.triage.breakdown))
    if view.review and view.review.findings:
        parts.append("### Review findings\n\n" + _findings(view))
    return "\n\n".join(parts)[:MAX_SUMMARY]


def _findings(view: RunView) -> str:
    assert view.review is not None
    rows = []
    for f in view.review.findings:
        if f.severity is Severity.INFO:
            continue
        where = f"`{f.path}`" + (f" line {f.line}" if f.line else "") if f.path else "patch"
        rows.append(f"- **{f.severity.value}** ({f.check.value}) {where}: {f.message}")
    info = sum(f.severity is Severity.INFO for f in view.review.findings)
    if info:
        rows.append(f"- {info} note(s) of no consequence (see review.json)")
    return "\n".join(rows) or "- none"


def comment_body(view: RunView, *, page: str | None = None) -> str:
    """gwi's one living comment on the pull request, for the run it describes: what gwi decided
    region by region, and the whole patch when it fits; when it does not, the comment says so
    and links the run page (``page``, None while pages are off), which shows all of it."""
    ctx = view.ctx
    head = f"### gwi: {_STAGE_TEXT.get(ctx.state, ctx.state.value)}"
    if ctx.outcome:
        head = f"### gwi: {ctx.outcome.value.replace('_', ' ')}"
    lines = [head, "",
             (f"Run `{ctx.run_id}` on `{ctx.head.sha[:12]}` (merging `{ctx.base.ref}`"
             f" `{ctx.base.sha[:12]}`).")]
    if page:
        lines[-1] += (f" **[The run page]({page})** shows the whole patch, each region beside"
                      " git's conflict, and the verified audit log.")
    if ctx.error:
        lines += ["", f"**Error:** {ctx.error}"]
    if ctx.state is RunState.ABORTED:  # stale, refused at the push, cancelled: say why
        lines += ["", f"**Stopped:** {ctx.history[-1].reason}"]
    if view.triage:
        t = view.triage
        lines += ["", (f"**Complexity {t.final}/10** (baseline {t.baseline},"
                  f" adjustment {t.adjustment.value:+d}; route {_route_text(view)}):")]
        lines += [f"- `{h.rule}` {h.points:+g}: {h.detail}" for h in t.breakdown]
        lines += [f"- LLM: {r.value}" for r in t.adjustment.reasons]
    if view.plan:
        lines += ["", "**Plan:** " + view.plan.summary]
        for f in view.plan.files:
            if f.conflicted:
                lines.append(f"- `{f.path}`: {f.action.value}"
                             f" ({f.regions_resolvable}/{f.regions} regions resolvable)"
                             + "".join(f"; {r}" for r in f.human_reasons))
    if view.review:
        lines += ["", f"**Review: {view.review.verdict.value}**", _findings(view)]
    if view.resolve and any(f.status is not FileStatus.MERGED_CLEANLY
                            for f in view.resolve.files):
        decided, whole = resolution_view(view.resolve, MAX_VIEW_IN_COMMENT)
        lines += ["", *decided]
        if not whole:
            lines.append(f"[The run page]({page}) shows every file." if page else
                         "The rest is in the run bundle (`gwi runs show`); turning on run pages"
                         " shows all of it on a page (README, \"Run pages\").")
    patch_shown = False
    if view.patch:
        diff = view.patch.decode("utf-8", "replace")
        room = MAX_COMMENT - len("\n".join(lines)) - 4_000  # the approve or hand-off text
        if len(diff) <= min(MAX_DIFF_IN_COMMENT, room):
            lines += ["", f"<details><summary>The whole patch ({len(view.patch)} bytes)</summary>",
                      "", *fenced(diff, "diff"), "", "</details>"]
            patch_shown = True
        else:
            lines += ["", f"**The patch ({len(view.patch)} bytes) is too long to show here.** "
                      + (f"[The run page]({page}) shows all of it, and"
                         f" [patch.diff]({page}/patch.diff) is the file itself." if page else
                         "Run pages are off on this gwi, so the whole patch is only in the run"
                         " bundle (`gwi runs show`), which its operator can send; turning run"
                         " pages on shows it on GitHub's side (README, \"Run pages\").")]
    if ctx.state is RunState.AWAITING_APPROVAL and view.patch_hash:
        lines += ["", f"Patch hash: `{view.patch_hash}`", "",
                  (f"To push exactly this patch, {approvers(ctx.options.approver_role)}"
                   " comments" + ("" if patch_shown else " (after reading the whole patch)")
                   + ":"), "",
                  "```", approve_line(view) or "", "```"]
    elif ctx.outcome is Outcome.HANDED_OFF and view.patch_hash:
        why = ("gwi could not push to the fork after the approval, so nothing was written"
               if view.approval else
               "gwi may not push to this branch (a fork that does not allow edits by maintainers)")
        source = ("the patch above" if patch_shown else
                  f"[patch.diff]({page}/patch.diff)" if page else "the run bundle's patch.diff")
        lines += ["", (f"Patch hash: `{view.patch_hash}`. {why}. To make the same merge commit"
                  f" by hand, save {source} as `gwi.patch`, fetch the base commit, and on"
                  " the pull request's branch run:"), "",
                  "```", f"git merge --no-commit {ctx.base.sha}   # stops with the conflicts",
                  "git read-tree --reset -u HEAD", "git apply --index gwi.patch",
                  "git commit --no-edit && git push", "```"]
    elif ctx.outcome is Outcome.NEEDS_HUMAN and view.plan:
        lines += ["", "**Next step:** " + needs_human_next_step(view)]
    elif ctx.outcome is Outcome.APPLIED and view.approval:
        lines += ["", f"Pushed after approval by @{view.approval.approver.login}."]
    body = "\n".join(lines)
    return body[:MAX_COMMENT]
