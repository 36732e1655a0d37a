"""`gwi runs list|show|verify|export` and `gwi key show|rotate`: the run bundles and the key that signs
them, for people and scripts."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import GwiError
from bot.runs.bundle import RunNotFound
from bot.runs.ids import check_run_id
from bot.runs.signing import (
    fingerprint,
    load_signer,
    parse_public_key,
    public_key_pem,
    retired_keys,
    ring_path,
    rotate,
    trusted_keys,
)
from bot.runs.store import RunStore
from bot.runs.store_factory import open_run_store
from bot.schemas.common import format_patch_hash
from bot.schemas.resolve import ResolveResult
from bot.settings import Settings, load_settings

if TYPE_CHECKING:
    from bot.queue.interface import QueueStore


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    runs = sub.add_parser("runs", help="list, show, verify and export run bundles")
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="ACTION", required=True)

    p = runs_sub.add_parser("list", help="one line per run, newest last")
    p.add_argument("--json", action="store_true", help="JSON Lines, one run a line")
    p.set_defaults(func=cmd_list)

    p = runs_sub.add_parser("show", help="a run's state history, artifacts and outcome")
    p.add_argument("run_id", metavar="RUN")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = runs_sub.add_parser(
        "verify", help="check a bundle's audit chain, signatures, signing key and anchor",
        description="Exit 0: intact, signed by a trusted key (and matching the anchor); 1: a"
        " check failed (damaged, a bad signature, an untrusted key, an anchor not matched);"
        " 3: intact but unsigned, so nothing vouches for who wrote it; 2: bad input.")
    p.add_argument("run_id", metavar="PATH_OR_ID",
                   help="a run id of this data folder, or a bundle folder anywhere")
    p.add_argument("--public-key", action="append", metavar="KEY",
                   help="a trusted Ed25519 public key: hex, or a file holding hex or PEM"
                   " (repeatable; default: the local key and its retired keys)")
    p.add_argument("--anchor", metavar="SEQ:HASH", type=_anchor,
                   help="a chain head gwi published (the check-run shows it); default for a"
                   " run id: the latest one in the queue database")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_verify)

    p = runs_sub.add_parser(
        "export", help="write a run as the standard <run id>/ folder, byte for byte",
        description="Write the run (from the data folder or PostgreSQL) as DIR/<run id>/:"
        " every artifact and audit.log exactly as hashed, for `gwi runs verify DIR/<run id>`"
        " offline. DIR/<run id> must not exist.")
    p.add_argument("run_id", metavar="RUN")
    p.add_argument("dest", metavar="DIR", type=Path)
    p.set_defaults(func=cmd_export)

    key = sub.add_parser("key", help="the Ed25519 key that signs audit logs and approvals")
    key_sub = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    p = key_sub.add_parser("show", help="print the public key (hex), its fingerprint and PEM;"
                           " never creates a key")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_key_show)
    p = key_sub.add_parser("rotate", help="retire the key (its public half stays trusted for"
                           " old bundles) and make a new one")
    p.set_defaults(func=cmd_key_rotate)


def _anchor(text: str) -> tuple[int, str]:
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise argparse.ArgumentTypeError(f"not SEQ:HASH (a number and 64 hex digits): {text!r}")
    return int(seq), digest


@contextmanager
def _store() -> Iterator[RunStore]:
    """The run store the settings name, closed (its connections, if any) when done."""
    store = open_run_store(load_settings())
    try:
        yield store
    finally:
        store.close()


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
    with _store() as store:
        return _list(store, args)


def _list(store: RunStore, args: argparse.Namespace) -> int:
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
    with _store() as store:
        return _show(store, args)


def _show(store: RunStore, args: argparse.Namespace) -> int:
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


def cmd_export(args: argparse.Namespace) -> int:
    with _store() as store:
        folder = store.export(check_run_id(args.run_id), args.dest)
    print(f"run {args.run_id}: exported to {folder} (check it with `gwi runs verify {folder}`)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from bot.runs.verify import EXIT_CODES, verify_bundle

    settings = load_settings()
    if args.public_key:
        trusted = frozenset(_read_key(text) for text in args.public_key)
    else:
        trusted = trusted_keys(settings.signing_key_path)
    anchor = args.anchor
    anchor_source = "given" if anchor else None
    store = open_run_store(settings)
    try:
        folder, run_id = _bundle_folder(args.run_id, store)
        if anchor is None and run_id is not None:
            anchor = _recorded_anchor(settings, run_id)
            anchor_source = "queue database" if anchor else None
        if folder is not None:
            report = verify_bundle(folder, trusted_keys=trusted, anchor=anchor)
        else:
            with store.materialise(args.run_id) as path:
                report = verify_bundle(path, trusted_keys=trusted, anchor=anchor)
    finally:
        store.close()
    code = EXIT_CODES[report.verdict]
    if args.json:
        print(json.dumps({
            "run_id": report.run_id, "verdict": report.verdict.value, "ok": report.ok,
            "chain_intact": report.chain_intact, "problems": report.problems,
            "signature_valid": report.last_seal_signed, "signed_by": report.signed_by,
            "key_trusted": report.key_trusted, "trusted_keys": sorted(trusted),
            "anchor": None if anchor is None else {
                "seq": anchor[0], "hash": anchor[1], "source": anchor_source,
                "matched": report.anchor_matched},
            "head": None if report.head is None else f"{report.head[0]}:{report.head[1]}",
            "events": report.events, "state": report.state}, sort_keys=True))
        return code
    out = sys.stdout if report.ok else sys.stderr
    print(f"run {report.run_id}: {report.verdict.value.upper()}", file=out)
    for line in report.explain():
        print(f"  {line}", file=out)
    for more in report.problems[1:]:
        print(f"  also: {more}", file=out)
    if report.key_trusted is False and not trusted:
        print(f"  (no key is trusted here: there is no signing key at {settings.signing_key_path};"
              " give --public-key)", file=out)
    if report.ok and anchor is None:
        print("  (no anchor checked: give --anchor SEQ:HASH from the check-run to rule out a"
              " bundle cut back to an earlier signed point)", file=out)
    return code


def _bundle_folder(arg: str, store: RunStore) -> tuple[Path | None, str | None]:
    """A bundle folder given by path (and no id), or a run id of the run store (and no path:
    the store materialises it)."""
    path = Path(arg)
    if "/" in arg or arg in (".", "..") or (path.is_dir() and not _is_run_id(arg)):
        if not (path / "audit.log").is_file():
            raise GwiError(f"{arg} is not a run bundle folder (it has no audit.log)")
        return path.resolve(), None
    if not _is_run_id(arg) or not store.exists(arg):
        # bad input (2), as for `runs show`; 1 is a failed check
        raise RunNotFound(f"no run {arg} in {store.location(arg) if _is_run_id(arg) else 'the run store'},"
                          f" and no bundle folder {arg}")
    return None, arg


def _is_run_id(text: str) -> bool:
    try:
        check_run_id(text)
    except GwiError:
        return False
    return True


def _read_key(text: str) -> str:
    path = Path(text)
    if len(text) != 64 and path.is_file():
        return parse_public_key(path.read_text())
    return parse_public_key(text)


def _recorded_anchor(settings: Settings, run_id: str) -> tuple[int, str] | None:
    """The latest anchor the queue database kept for the run (None without a database)."""
    from bot.queue.factory import open_queue
    from bot.queue.schema import DB_FILENAME

    if settings.server.database_url is None and not (settings.data_dir / DB_FILENAME).exists():
        return None

    async def read(store: QueueStore) -> tuple[int, str] | None:
        index = store.run_index()
        await index.ensure_schema()
        return await index.latest_anchor(run_id)

    store = open_queue(settings)
    try:
        return asyncio.run(read(store))
    finally:
        store.close()


def cmd_key_show(args: argparse.Namespace) -> int:
    settings = load_settings()
    signer = load_signer(settings.signing_key_path)
    if signer is None:
        raise GwiError(
            f"there is no signing key at {settings.signing_key_path}: gwi makes one the first"
            " time it writes a run (`gwi run`, `gwi serve`), `gwi key rotate` makes one now, or"
            " set GWI_SIGNING_KEY to an Ed25519 PEM key you keep")
    public = signer.public_key_hex
    retired = retired_keys(settings.signing_key_path)
    if args.json:
        print(json.dumps({"public_key": public, "fingerprint": fingerprint(public),
                          "pem": public_key_pem(public), "path": str(settings.signing_key_path),
                          "retired": retired}, sort_keys=True))
        return 0
    print(public)
    print(f"fingerprint {fingerprint(public)}", file=sys.stderr)
    print(public_key_pem(public), end="", file=sys.stderr)
    if retired:
        print(f"{len(retired)} retired key(s) still trusted for old bundles:", file=sys.stderr)
        for key in retired:
            print(f"  {key}", file=sys.stderr)
    return 0


def cmd_key_rotate(args: argparse.Namespace) -> int:
    settings = load_settings()
    old, new = rotate(settings.signing_key_path, allow_in_work_tree=settings.key_in_work_tree)
    if old:
        print(f"retired {old} (kept in {ring_path(settings.signing_key_path)}, so bundles it"
              " signed still verify)")
    print(f"new signing key {new.public_key_hex} ({fingerprint(new.public_key_hex)})")
    if settings.server.database_url is not None:
        # The deployment's processes check their key against the database's at start-up.
        from bot.queue.factory import open_queue

        store = open_queue(settings)
        try:
            recorded = asyncio.run(store.replace_signing_key(old or "", new.public_key_hex))
        finally:
            store.close()
        if recorded != new.public_key_hex:
            raise GwiError(
                f"the database records the key {fingerprint(recorded)}, which is neither the"
                " retired key nor the new one: this key file is not the deployment's; the new"
                f" key stays at {settings.signing_key_path}, the database unchanged")
        print("the database now records the new key for this deployment")
    print("copy the key file and its ring of retired keys to every host, then restart every gwi"
          " process so they sign with the new one")
    return 0
