"""Operating gwi: `gwi queue list/retry`, `gwi deliveries redeliver`, `gwi prune`."""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import GwiError

if TYPE_CHECKING:
    from bot.queue.interface import QueueStore

_AGE = re.compile(r"(\d+)([dhm])")
_UNIT = {"d": 86400, "h": 3600, "m": 60}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    queue = sub.add_parser("queue", help="look at the job queue and retry failed jobs")
    queue_sub = queue.add_subparsers(dest="queue_command", metavar="COMMAND", required=True)
    p = queue_sub.add_parser("list", help="jobs and recent deliveries, newest first")
    p.add_argument("--failed", action="store_true", help="only what failed")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue_list)
    p = queue_sub.add_parser("retry", help="put a failed (or cancelled) job back in the queue")
    p.add_argument("job_id", type=int, metavar="ID")
    p.set_defaults(func=cmd_queue_retry)

    deliveries = sub.add_parser("deliveries", help="GitHub's webhook deliveries")
    deliveries_sub = deliveries.add_subparsers(dest="deliveries_command", metavar="COMMAND",
                                               required=True)
    p = deliveries_sub.add_parser("redeliver", help="ask GitHub to send a delivery again")
    p.add_argument("delivery_id", type=int, metavar="ID",
                   help="GitHub's numeric id of the delivery (the App's advanced settings)")
    p.set_defaults(func=cmd_redeliver)

    p = sub.add_parser("prune", help="delete finished runs, old deliveries and stale caches")
    p.add_argument("--older-than", required=True, metavar="AGE", type=parse_age,
                   help="e.g. 30d, 12h, 90m: what finished longer ago than this goes")
    p.add_argument("--dry-run", action="store_true", help="say what would go, delete nothing")
    p.set_defaults(func=cmd_prune)


def parse_age(text: str) -> float:
    """Seconds in ``30d``, ``12h`` or ``90m``."""
    match = _AGE.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"not an age like 30d, 12h or 90m: {text!r}")
    return int(match.group(1)) * _UNIT[match.group(2)]


def _open_queue() -> QueueStore:
    from bot.queue.factory import open_queue
    from bot.queue.records import StoreError
    from bot.settings import load_settings

    try:
        return open_queue(load_settings())
    except StoreError as exc:
        raise GwiError(str(exc)) from None


def cmd_queue_list(args: argparse.Namespace) -> int:
    from bot.queue.records import DeliveryStatus, JobStatus

    async def read(store: QueueStore) -> tuple[list[Any], list[Any]]:
        jobs = await store.list_jobs(status=JobStatus.FAILED if args.failed else None)
        deliveries = await store.list_deliveries(
            status=DeliveryStatus.FAILED if args.failed else None, limit=50)
        return jobs, deliveries

    store = _open_queue()
    try:
        jobs, deliveries = asyncio.run(read(store))
    finally:
        store.close()
    jobs = sorted(jobs, key=lambda j: j.id, reverse=True)[:100]
    if args.json:
        print(json.dumps({
            "jobs": [{"id": j.id, "kind": j.kind, "key": j.key, "status": j.status.value,
                      "attempts": j.attempts, "last_error": j.last_error} for j in jobs],
            "deliveries": [{"delivery_id": d.delivery_id, "event": d.event, "action": d.action,
                            "repository": d.repository, "status": d.status.value,
                            "attempts": d.attempts, "last_error": d.last_error}
                           for d in deliveries]}, indent=2))
        return 0
    print(f"jobs ({len(jobs)}):")
    for j in jobs:
        error = f"  {j.last_error}" if j.last_error else ""
        print(f"  {j.id:>6} {j.status.value:<9} {j.kind:<13} {j.key or '-'}"
              f" attempts {j.attempts}{error}")
    print(f"deliveries ({len(deliveries)}):")
    for d in deliveries:
        what = d.event + (f".{d.action}" if d.action else "")
        error = f"  {d.last_error}" if d.last_error else ""
        print(f"  {d.delivery_id} {d.status.value:<10} {what:<28} {d.repository or '-'}{error}")
    return 0


def cmd_queue_retry(args: argparse.Namespace) -> int:
    store = _open_queue()
    try:
        retried = asyncio.run(store.retry_job(args.job_id))
    finally:
        store.close()
    if not retried:
        raise GwiError(f"job {args.job_id} does not exist or has not failed or been cancelled")
    print(f"job {args.job_id}: pending again, with fresh attempts")
    return 0


def cmd_redeliver(args: argparse.Namespace) -> int:
    from bot.github.client import GitHubApp
    from bot.settings import load_settings

    github = load_settings().require_github()

    async def redeliver() -> None:
        async with GitHubApp.connect(github) as app:
            await app.redeliver_webhook_delivery(args.delivery_id)

    asyncio.run(redeliver())
    print(f"delivery {args.delivery_id}: GitHub was asked to send it again")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from bot.runs.store_factory import open_run_store
    from bot.schemas.state import TERMINAL
    from bot.settings import load_settings

    settings = load_settings()
    cutoff = time.time() - args.older_than
    runs = open_run_store(settings)
    old_runs = []
    for run_id in runs.list_ids():
        try:
            ctx = runs.read_context(run_id)
        except GwiError:
            continue  # a damaged bundle is evidence: a person decides about it
        if ctx.state in TERMINAL and ctx.updated_at.timestamp() < cutoff:
            old_runs.append(run_id)
    caches = _old_caches(settings.data_dir / "repos", cutoff)
    if args.dry_run:
        print(f"would delete {len(old_runs)} finished run(s), {len(caches)} repository"
              " cache(s), and deliveries and jobs that finished before the cutoff")
        return 0
    deleted = [run_id for run_id in old_runs if runs.delete_finished(run_id)]
    async def prune_queue(store: QueueStore) -> tuple[int, int]:
        index = store.run_index()
        await index.ensure_schema()
        await index.forget(deleted)
        return await store.prune(cutoff)

    store = _open_queue()
    try:
        deliveries, jobs = asyncio.run(prune_queue(store))
    finally:
        store.close()
    caches = [cache for cache in caches if _remove_unless_in_use(cache)]
    print(f"deleted {len(deleted)} finished run(s), {deliveries} delivery(ies), {jobs} job(s),"
          f" {len(caches)} repository cache(s)")
    return 0


def _remove_unless_in_use(git_dir: Path) -> bool:
    """Delete a cached repository while holding its lock (the one `RepoCache` takes): a
    repository a running gwi is fetching into or pushing from is left alone."""
    lock_file = git_dir.parent / f".{git_dir.name}.lock"
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        shutil.rmtree(git_dir, ignore_errors=True)
        return True
    finally:
        os.close(fd)


def _old_caches(root: Path, cutoff: float) -> list[Path]:
    """Bare repositories of the cache not fetched into since ``cutoff`` (a fetch touches
    FETCH_HEAD); they are rebuilt on their next use."""
    if not root.is_dir():
        return []
    old = []
    for head in root.glob("*/*/HEAD"):
        git_dir = head.parent
        touched = max((p.stat().st_mtime for p in (head, git_dir / "FETCH_HEAD") if p.exists()),
                      default=0.0)
        if touched < cutoff:
            old.append(git_dir)
    return old
