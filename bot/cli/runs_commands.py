"""`gwi runs list|show|verify` and `gwi key show`: the run bundles, for people and scripts."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bot.errors import GwiError
from bot.runs.bundle import RunNotFound
from bot.runs.signing import load_or_create_signer
from bot.runs.store import RunStore
from bot.schemas.common import format_patch_hash
from bot.schemas.resolve import ResolveResult
from bot.settings import load_settings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    runs = sub.add_parser("runs", help="list, show and verify run bundles")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)

    p = runs_sub.add_parser("list", help="one line per run, newest last")
    p.add_argument("--json", action="store_true", help="JSON Lines, one run a line")
    p.set_defaults(func=cmd_list)

    p = runs_sub.add_parser("show", help="a run's state history, artifacts and outcome")
    p.add_argument("run_id", metavar="RUN")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = runs_sub.add_parser("verify", help="check a bundle's audit chain, artifacts and signature")
    p.add_argument("run_id", metavar="RUN")
    p.add_argument("--public-key", help="the Ed25519 key (hex) signatures must come from")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    key = sub.add_parser("key", help="the Ed25519 key that signs audit logs and approvals")
    key_sub = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    p = key_sub.add_parser("show", help="print the public key (hex), creating the key if needed")
    p.set_defaults(func=cmd_key_show)


def _store() -> RunStore:
    return RunStore.from_settings(load_settings())


def _summary(store: RunStore, run_id: str) -> dict[str, Any]:
    ctx = store.read_context(run_id)
    return {
        "run_id": run_id,
        "state": ctx.state.value,
        "outcome": ctx.outcome.value if ctx.outcome else None,
        "repository": ctx.repository.full_name,
        "pull_request": ctx.pull_request.number if ctx.pull_request else None,
        "base": ctx.base.ref,
        "head": ctx.head.ref,
        "created_at": ctx.created_at.isoformat(),
        "updated_at": ctx.updated_at.isoformat(),
    }


def cmd_list(args: argparse.Namespace) -> int:
    store = _store()
    for run_id in store.list_ids():
        try:
            row = _summary(store, run_id)
        except GwiError as exc:
            # One bundle a crash cut short or a person broke does not hide the others.
            if args.json:
                print(json.dumps({"run_id": run_id, "error": str(exc)}, sort_keys=True))
            else:
                print(f"{run_id}  unreadable: {exc} (`gwi runs verify {run_id}` says more)")
            continue
        if args.json:
            print(json.dumps(row, sort_keys=True))
        else:
            where = row["repository"] + (f"#{row['pull_request']}" if row["pull_request"] else "")
            end = f" ({row['outcome']})" if row["outcome"] else ""
            print(f"{run_id}  {row['state']}{end}  {where}  {row['head']} <- {row['base']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    store = _store()
    ctx = store.read_context(args.run_id)
    artifacts = store.artifacts(args.run_id)
    resolve = store.read_model(args.run_id, "resolve.json", ResolveResult)
    patch_hash = resolve.patch_sha256 if resolve else None
    if args.json:
        doc = {
            "run": ctx.model_dump(mode="json"),
            "artifacts": [a.__dict__ for a in artifacts],
            "patch_hash": format_patch_hash(patch_hash) if patch_hash else None,
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
        return 0
    print(f"run {ctx.run_id}: {ctx.state.value}" + (f" ({ctx.outcome.value})" if ctx.outcome else ""))
    print(f"  repository {ctx.repository.full_name}, head {ctx.head.ref} ({ctx.head.sha[:12]})"
          f" <- base {ctx.base.ref} ({ctx.base.sha[:12]})")
    if ctx.error:
        print(f"  error: {ctx.error}")
    if patch_hash:
        print(f"  patch {format_patch_hash(patch_hash)}")
    print("  history:")
    for entry in ctx.history:
        print(f"    {entry.at.isoformat()}  {entry.state.value:<18} {entry.reason}")
    print("  artifacts:")
    for a in artifacts:
        print(f"    {a.name:<14} {a.size:>9} bytes  sha256:{a.sha256}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from bot.runs.verify import verify_bundle

    settings = load_settings()
    store = RunStore.from_settings(settings)
    if not store.exists(args.run_id):  # bad input (2), as for `runs show`; 1 is a failed check
        raise RunNotFound(f"no run {args.run_id} under {store.runs_dir}")
    trusted = args.public_key
    if trusted is None and settings.signing_key_path.exists():
        trusted = load_or_create_signer(settings.signing_key_path).public_key_hex
    report = verify_bundle(store.run_dir(args.run_id), trusted_key=trusted)
    if args.json:
        print(json.dumps({"run_id": report.run_id, "ok": report.ok, "problems": report.problems,
                          "events": report.events, "signed_by": report.signed_by,
                          "state": report.state}, sort_keys=True))
    elif report.ok:
        signed = f", signed by {report.signed_by}" if report.signed_by else ", not signed yet"
        print(f"run {report.run_id}: OK ({report.events} audit events intact, every artifact"
              f" matches{signed})")
    else:
        print(f"run {report.run_id}: FAILED: {report.problems[0]}", file=sys.stderr)
        for more in report.problems[1:]:
            print(f"  also: {more}", file=sys.stderr)
    return 0 if report.ok else 1


def cmd_key_show(args: argparse.Namespace) -> int:
    settings = load_settings()
    print(load_or_create_signer(settings.signing_key_path).public_key_hex)
    return 0
