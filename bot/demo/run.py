"""Build the demo repository from the bundled scenarios, run, approve, apply and verify."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot.engine.local import apply_local, approve_local, start_local_run
from bot.engine.pipeline import Engine
from bot.errors import GwiError
from bot.runs.store import RunStore
from bot.runs.verify import verify_bundle
from bot.runs.view import RunView
from bot.schemas.run import AgentConfig, Provider
from bot.schemas.state import RunState

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DEMO_IDENTITY = {
    "GIT_AUTHOR_NAME": "gwi demo",
    "GIT_AUTHOR_EMAIL": "demo@gwi.invalid",
    "GIT_COMMITTER_NAME": "gwi demo",
    "GIT_COMMITTER_EMAIL": "demo@gwi.invalid",
}


def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, **DEMO_IDENTITY, "GIT_CONFIG_NOSYSTEM": "1"}
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=env,
                          check=False)
    if proc.returncode != 0:
        raise GwiError(f"demo: git {args[0]} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode().strip()


def _write(repo: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        target = repo / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        _git(repo, "add", "--", rel)


def scenarios() -> list[tuple[str, Path]]:
    out = []
    for folder in sorted(p for p in SCENARIOS.iterdir() if (p / "meta.json").is_file()):
        out.append((json.loads((folder / "meta.json").read_text())["path"], folder))
    if not out:
        raise GwiError(f"demo: no scenarios in {SCENARIOS}")
    return out


def build_repository(root: Path) -> Path:
    """A repository whose branch ``feature`` conflicts with ``main`` in every scenario file."""
    repo = root / "demo-repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    files = scenarios()
    _write(repo, {path: (folder / "base").read_bytes() for path, folder in files})
    _git(repo, "commit", "-q", "-m", "Common ancestor")
    _git(repo, "checkout", "-q", "-b", "feature")
    _write(repo, {path: (folder / "ours").read_bytes() for path, folder in files})
    _git(repo, "commit", "-q", "-m", "Work on the feature branch")
    _git(repo, "checkout", "-q", "main")
    _write(repo, {path: (folder / "theirs").read_bytes() for path, folder in files})
    _git(repo, "commit", "-q", "-m", "Meanwhile on main")
    _git(repo, "checkout", "-q", "--detach")  # leave `feature` free to be moved by gwi apply
    return repo


def run_demo(store: RunStore, say: Callable[[str], None] = print, *, keep: bool = False) -> int:
    started = time.monotonic()
    if keep:
        root = Path(tempfile.mkdtemp(prefix="gwi-demo-"))
        code = _demo(store, root, say, started)
        say(f"kept the demo repository: {root / 'demo-repo'} (delete it when done)")
        return code
    with tempfile.TemporaryDirectory(prefix="gwi-demo-") as tmp:
        return _demo(store, Path(tmp), say, started)


def _demo(store: RunStore, root: Path, say: Callable[[str], None], started: float) -> int:
    repo = build_repository(root)
    say(f"demo repository: {repo}")
    say("  branch feature conflicts with main in: "
        + ", ".join(path for path, _ in scenarios()))
    conflicted = subprocess.run(
        ["git", "-C", str(repo), "merge-tree", "--write-tree", "feature", "main"],
        capture_output=True, check=False).returncode
    say(f"  plain `git merge` would stop with conflicts: {'yes' if conflicted else 'no'}")
    run_id = start_local_run(store, repo, "main", "feature", "demo",
                             AgentConfig(provider=Provider.OFFLINE))
    say(f"\n$ gwi run --repo {repo} --base main --head feature")
    ctx = Engine(store).advance(
        run_id, on_step=lambda c: say(f"  -> {c.state.value}: {c.history[-1].reason}"))
    view = RunView.load(store, run_id)
    if view.triage:
        t = view.triage
        say(f"  complexity {t.final}/10 (route {t.route.value}): "
            + ", ".join(f"{h.rule} {h.points:+g}" for h in t.breakdown))
    if view.plan:
        say(f"  plan: {view.plan.summary}")
    if view.resolve:
        for f in view.resolve.files:
            say(f"    {f.path}: {f.status.value}"
                + (f" by {', '.join(f.strategies)}" if f.strategies else "")
                + f" - {f.explanation[:110]}")
    if view.review:
        say(f"  review: {view.review.verdict.value} ({view.review.blockers} blockers,"
            f" {view.review.warnings} warnings)")
    if ctx.state is not RunState.AWAITING_APPROVAL or view.patch_hash is None:
        say(f"the run ended {ctx.state.value} ({ctx.outcome}); nothing to approve")
        return 1
    say(f"  patch hash: {view.patch_hash}")
    if view.triage:
        why = {"human": "routed to a person: gwi proposed only what it could prove",
               "agent": "routed to an agent, and with no LLM configured gwi proposed only"
                        " what it could prove",
               "deterministic": "simple enough for the deterministic resolver alone"}
        say(f"  ({why[view.triage.route.value]}; nothing is pushed until a person approves"
            " this exact patch: here the demo plays that person and approves it by its hash,"
            " as a maintainer would after reading it)")
    say(f"\n$ gwi approve {run_id} --patch-hash {view.patch_hash} --as demo-maintainer")
    approve_local(store, run_id, view.patch_hash, "demo-maintainer")
    say("  approval recorded and signed")
    say(f"\n$ gwi apply {run_id}")
    applied = apply_local(store, run_id, "demo-maintainer")
    if applied.after is None:
        say(f"  nothing written: {applied.reason}")
        return 1
    say(f"  new merge commit {applied.after} on {applied.branch}")
    say("  " + _git(repo, "log", "--oneline", "--graph", "-4", "feature")
        .replace("\n", "\n  "))
    say(f"\n$ gwi runs verify {run_id}")
    with store.materialise(run_id) as folder:
        report = verify_bundle(folder, trusted_keys={store.signer.public_key_hex})
    if not report.ok:
        say("  FAILED: " + "; ".join(report.explain()))
        return 1
    say(f"  OK: {report.events} audit events intact, every artifact matches, every seal"
        f" signed by the trusted key {store.signer.public_key_hex}")
    say(f"\nthe run bundle: {store.location(run_id)}")
    say(f"demo finished in {time.monotonic() - started:.1f} s")
    return 0
