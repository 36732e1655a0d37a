"""`gwi run`, `gwi approve`, `gwi apply`: the whole run on a local repository."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.engine.pipeline import Engine
    from bot.runs.store import RunStore
    from bot.settings import Settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="triage, plan, resolve and review merging BASE into HEAD")
    p.add_argument("--repo", type=Path, default=Path("."), help="the repository (default: .)")
    p.add_argument("--base", help="the branch (or revision) the change merges into")
    p.add_argument("--head", help="the branch with the change; gwi apply moves it")
    p.add_argument("--resume", metavar="RUN", help="continue an interrupted run")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("approve", help="approve a run's exact patch by its hash")
    p.add_argument("run_id", metavar="RUN")
    p.add_argument("--patch-hash", required=True, metavar="sha256:HEX",
                   help="the full hash gwi run printed")
    p.add_argument("--as", dest="approver", default=None,
                   help="who approves (default: the local user)")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("apply", help="commit an approved patch and move the head branch")
    p.add_argument("run_id", metavar="RUN")
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("abort", help="end a run that has not finished, recording who and why")
    p.add_argument("run_id", metavar="RUN")
    p.add_argument("--reason", default=None, help="why (default: aborted by the local user)")
    p.set_defaults(func=cmd_abort)

    p = sub.add_parser("demo", help="the whole pipeline on real conflicts, offline, in a"
                       " temporary repository")
    p.add_argument("--keep", action="store_true",
                   help="keep the demo repository (its path is printed) instead of deleting it")
    p.set_defaults(func=cmd_demo)


def local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local-user"


def make_engine(settings: Settings, store: RunStore) -> Engine:
    from bot.agents.llm import make_llm
    from bot.engine.pipeline import Engine

    return Engine(store=store, llm=make_llm(settings.llm))


def cmd_run(args: argparse.Namespace) -> int:
    from bot.engine.local import start_local_run
    from bot.errors import GwiError
    from bot.runs.store_factory import open_run_store
    from bot.settings import load_settings

    settings = load_settings()
    store = open_run_store(settings)
    engine = make_engine(settings, store)
    if args.resume:
        if args.base or args.head:
            raise GwiError("--resume takes only the run id")
        run_id = args.resume
        store.read_context(run_id)
    else:
        if not (args.base and args.head):
            raise GwiError("gwi run needs --base and --head (or --resume RUN)")
        run_id = start_local_run(store, args.repo, args.base, args.head, local_user(),
                                 settings.llm.agent_config)
        print(f"run {run_id}: created ({store.location(run_id)})")
    ctx = engine.advance(run_id, on_step=lambda c: print(f"  -> {c.state.value}: "
                                                            f"{c.history[-1].reason}"))
    print(summary(store, run_id))
    return 0 if ctx.state.value in ("awaiting_approval", "done") else 1


def summary(store: RunStore, run_id: str) -> str:
    """What a person needs after a run stops: score, plan, verdict, and what to do next."""
    from bot.schemas.common import format_patch_hash
    from bot.schemas.plan import PlanResult
    from bot.schemas.resolve import ResolveResult
    from bot.schemas.review import ReviewResult
    from bot.schemas.triage import TriageResult

    ctx = store.read_context(run_id)
    lines = [f"run {run_id}: {ctx.state.value}"
             + (f" ({ctx.outcome.value})" if ctx.outcome else "")]
    triage = store.read_model(run_id, "triage.json", TriageResult)
    if triage:
        top = ", ".join(h.rule for h in triage.breakdown if h.points > 0 and h.rule != "base")
        lines.append(f"  complexity {triage.final}/10, route {triage.route.value}"
                     + (f" ({top})" if top else ""))
    plan = store.read_model(run_id, "plan.json", PlanResult)
    if plan:
        lines.append(f"  plan: {plan.summary}")
    resolved = store.read_model(run_id, "resolve.json", ResolveResult)
    review = store.read_model(run_id, "review.json", ReviewResult)
    if review:
        lines.append(f"  review: {review.verdict.value} ({review.blockers} blocker(s),"
                     f" {review.warnings} warning(s))")
        for finding in review.findings:
            if finding.severity.value != "info":
                where = f"{finding.path}: " if finding.path else ""
                lines.append(f"    {finding.severity.value}: {where}{finding.message}")
    if ctx.error:
        lines.append(f"  error: {ctx.error}")
    if plan and ctx.outcome is not None and ctx.outcome.value == "needs_human":
        by_hand = [f.path for f in plan.files if f.action.value == "human"]
        if by_hand:
            lines += [("  next step: resolve these files by hand (merge the base into the head,"
                      " then edit their conflict markers):")]
            lines += [f"    {path}" for path in by_hand]
            lines += [(f"  gwi's resolutions of the other files: {store.location(run_id, 'patch.diff')}"
                      " (take them with `git apply` on the head, after the merge)")]
    if resolved and ctx.state.value == "awaiting_approval":
        digest = format_patch_hash(resolved.patch_sha256)
        lines += [f"  patch: {store.location(run_id, 'patch.diff')}",
                  f"  patch hash: {digest}",
                  "  to approve it:",
                  f"    gwi approve {run_id} --patch-hash {digest}",
                  f"    gwi apply {run_id}"]
    return "\n".join(lines)


def cmd_approve(args: argparse.Namespace) -> int:
    from bot.engine.local import approve_local
    from bot.runs.store_factory import open_run_store
    from bot.schemas.common import format_patch_hash
    from bot.settings import load_settings

    store = open_run_store(load_settings())
    record = approve_local(store, args.run_id, args.patch_hash, args.approver or local_user())
    print(f"run {args.run_id}: {format_patch_hash(record.patch_sha256)} approved by"
          f" {record.approver.login}; apply it with: gwi apply {args.run_id}")
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    from bot.engine.local import apply_local
    from bot.runs.store_factory import open_run_store
    from bot.settings import load_settings

    store = open_run_store(load_settings())
    applied = apply_local(store, args.run_id, local_user())
    if applied.after:
        print(f"run {args.run_id}: applied: {applied.branch} {applied.before[:12]} ->"
              f" {applied.after}")
        return 0
    print(f"run {args.run_id}: nothing written, the run is aborted: {applied.reason}",
          file=sys.stderr)
    return 1


def cmd_abort(args: argparse.Namespace) -> int:
    from bot.engine.local import abort_local
    from bot.runs.store_factory import open_run_store
    from bot.settings import load_settings

    store = open_run_store(load_settings())
    ctx = abort_local(store, args.run_id, local_user(), args.reason)
    print(f"run {args.run_id}: {ctx.state.value} ({ctx.history[-1].reason})")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo.run import run_demo
    from bot.runs.store_factory import open_run_store
    from bot.settings import load_settings

    return run_demo(open_run_store(load_settings()), keep=args.keep)
