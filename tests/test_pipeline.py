"""The whole run on a local repository, offline: every outcome, resumption after kill -9 at any
point, and bad input."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.engine.approval import ApprovalRefused
from bot.engine.local import approve_local, start_local_run
from bot.engine.pipeline import Engine
from bot.errors import GwiError
from bot.runs.folder_store import FolderRunStore
from bot.runs.verify import verify_bundle
from bot.schemas.approval import ApprovalRecord
from bot.schemas.audit import AuditAction
from bot.schemas.resolve import ResolveResult
from bot.schemas.review import ReviewResult
from bot.schemas.state import Outcome, RunState
from tests.support import commit_files, git

OFFLINE = {"provider": "offline"}


def _unresolvable(make_repo: Callable[..., Path]) -> Path:
    """Both sides rewrite the same line differently: no rule can choose."""
    repo = make_repo({"app.py": "LIMIT = 10\n", "notes.txt": "a\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"app.py": "LIMIT = 20\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"app.py": "LIMIT = 30\n", "notes.txt": "b\n"}, "main")
    return repo


def test_a_clean_merge_needs_no_changes(store: FolderRunStore, make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"a.py": "x = 1\n", "b.py": "y = 1\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"a.py": "x = 2\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"b.py": "y = 2\n"}, "main")
    run_id = start_local_run(store, repo, "main", "feature", "me", OFFLINE)
    ctx = Engine(store).advance(run_id)
    assert ctx.state is RunState.DONE and ctx.outcome is Outcome.NO_CHANGES_NEEDED
    assert [h.state.value for h in ctx.history] == [
        "queued", "triaged", "planned", "review", "done"]
    assert store.read_bytes(run_id, "patch.diff") is None
    assert verify_bundle(store.run_dir(run_id)).ok


def test_an_up_to_date_head_needs_no_changes(store: FolderRunStore,
                                             make_repo: Callable[..., Path]) -> None:
    repo = make_repo()
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"new.py": "x = 1\n"}, "feature")
    run_id = start_local_run(store, repo, "main", "feature", "me", OFFLINE)
    ctx = Engine(store).advance(run_id)
    assert ctx.outcome is Outcome.NO_CHANGES_NEEDED


def test_an_unresolvable_conflict_ends_honestly(store: FolderRunStore,
                                                make_repo: Callable[..., Path]) -> None:
    repo = _unresolvable(make_repo)
    before = git(repo, "rev-parse", "feature")
    status = git(repo, "status", "--porcelain")
    run_id = start_local_run(store, repo, "main", "feature", "me", OFFLINE)
    ctx = Engine(store).advance(run_id)
    assert ctx.state is RunState.DONE and ctx.outcome is Outcome.NEEDS_HUMAN
    review = store.read_model(run_id, "review.json", ReviewResult)
    assert review is not None and review.verdict.value == "blocked"
    assert any(f.check.value == "unresolved" and f.path == "app.py" for f in review.findings)
    resolved = store.read_model(run_id, "resolve.json", ResolveResult)
    assert resolved is not None and not resolved.clean
    statuses = {f.path: f.status.value for f in resolved.files}
    assert statuses == {"app.py": "unresolved", "notes.txt": "merged_cleanly"}
    patch = store.read_bytes(run_id, "patch.diff") or b""
    assert b"<<<<<<< head" in patch  # the person gets the partial result, markers and all
    # the user's repository is untouched: same branch tip, same (clean) working tree
    assert git(repo, "rev-parse", "feature") == before
    assert git(repo, "status", "--porcelain") == status
    with pytest.raises(ApprovalRefused, match="nothing to approve"):
        approve_local(store, run_id, "sha256:" + "0" * 64, "me")
    assert verify_bundle(store.run_dir(run_id)).ok


def test_a_file_git_merges_cleanly_into_broken_syntax_blocks_the_patch(
    store: FolderRunStore, make_repo: Callable[..., Path]
) -> None:
    """Each branch's app.py parses and git merges them without a conflict, but the result
    does not parse: the review checks every file the patch changes, not only conflicts."""
    base = "if x:\n    a = 1\n\nb = 2\n"
    repo = make_repo({"app.py": base, "requirements.txt": "requests==2.0.0\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"app.py": "a = 1\n\nb = 2\n",
                        "requirements.txt": "requests==2.1.0\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"app.py": "if x:\n    a = 1\n\n    b = 2\n",
                        "requirements.txt": "requests==2.2.0\n"}, "main")
    run_id = start_local_run(store, repo, "main", "feature", "me", OFFLINE)
    ctx = Engine(store).advance(run_id)
    assert ctx.state is RunState.DONE and ctx.outcome is Outcome.NEEDS_HUMAN
    resolved = store.read_model(run_id, "resolve.json", ResolveResult)
    assert resolved is not None and resolved.clean  # the one conflict was settled
    review = store.read_model(run_id, "review.json", ReviewResult)
    assert review is not None and review.verdict.value == "blocked"
    [finding] = [f for f in review.findings if f.severity.value == "blocker"]
    assert finding.check.value == "syntax" and finding.path == "app.py"
    assert "without a conflict" in finding.message


def test_approval_is_refused_and_audited_while_the_run_is_not_ready(
    store: FolderRunStore, make_repo: Callable[..., Path]
) -> None:
    repo = _unresolvable(make_repo)
    run_id = start_local_run(store, repo, "main", "feature", "me", OFFLINE)
    for bad, code in [("sha256:abc", "64 lowercase hex"), ("sha256:" + "0" * 64, "not awaiting")]:
        with pytest.raises(ApprovalRefused, match=code):
            approve_local(store, run_id, bad, "me")
    refusals = [e for e in store.read_chain(run_id).events
                if e.action is AuditAction.APPROVAL_REFUSED]
    assert [e.data["code"] for e in refusals] == ["malformed_hash", "not_awaiting_approval"]


def test_bad_input_is_refused_clearly(store: FolderRunStore, make_repo: Callable[..., Path],
                                      tmp_path: Path) -> None:
    repo = make_repo()
    with pytest.raises(GwiError, match="does not name a commit"):
        start_local_run(store, repo, "main", "no-such-branch", "me", OFFLINE)
    with pytest.raises(GwiError, match="not a git repository"):
        start_local_run(store, tmp_path, "main", "main", "me", OFFLINE)
    with pytest.raises(GwiError, match="not a run id"):
        Engine(store).advance("../../etc")
    assert store.list_ids() == []


def _advance_in_child(data: str, key: str, run_id: str, steps: int) -> None:
    store = FolderRunStore(Path(data), Path(key))
    engine = Engine(store)
    for _ in range(steps):
        engine.step(run_id)
    os.kill(os.getpid(), signal.SIGKILL)  # die without cleaning up, as a crash would


def _diff(store: FolderRunStore, run_id: str) -> bytes:
    """The patch without its header (which names the run, so differs between runs)."""
    return (store.read_bytes(run_id, "patch.diff") or b"").partition(b"\n\n")[2]


def _reference(store: FolderRunStore, repo: Path) -> tuple[str, bytes]:
    run_id = start_local_run(store, repo, "main", "feature", "me", OFFLINE)
    ctx = Engine(store).advance(run_id)
    return str(ctx.outcome), _diff(store, run_id)


def test_kill_9_between_every_pair_of_stages_resumes_to_the_same_result(
    store: FolderRunStore, make_repo: Callable[..., Path]
) -> None:
    repo = _unresolvable(make_repo)
    expected = _reference(store, repo)
    ctx = multiprocessing.get_context("fork")
    for steps in range(6):
        run_id = start_local_run(store, repo, "main", "feature", "me", OFFLINE)
        child = ctx.Process(target=_advance_in_child,
                            args=(str(store.data_dir), str(store.signing_key), run_id, steps))
        child.start()
        child.join()
        assert child.exitcode == -signal.SIGKILL
        resumed = Engine(store).advance(run_id)
        assert (str(resumed.outcome), _diff(store, run_id)) == expected
        assert verify_bundle(store.run_dir(run_id)).ok


def _advance_forever(data: str, key: str, run_id: str) -> None:
    Engine(FolderRunStore(Path(data), Path(key))).advance(run_id)
    time.sleep(60)


def test_kill_9_at_random_moments_never_tears_a_run(
    store: FolderRunStore, make_repo: Callable[..., Path]
) -> None:
    repo = _unresolvable(make_repo)
    expected = _reference(store, repo)
    ctx = multiprocessing.get_context("fork")
    rnd = random.Random(1234)
    for _ in range(10):
        run_id = start_local_run(store, repo, "main", "feature", "me", OFFLINE)
        child = ctx.Process(target=_advance_forever,
                            args=(str(store.data_dir), str(store.signing_key), run_id))
        child.start()
        time.sleep(rnd.uniform(0.0, 0.25))
        assert child.pid is not None
        os.kill(child.pid, signal.SIGKILL)
        child.join()
        resumed = Engine(store).advance(run_id)
        assert (str(resumed.outcome), _diff(store, run_id)) == expected
        report = verify_bundle(store.run_dir(run_id))
        assert report.ok, report.problems


# -- kill -9 while approving and applying ----------------------------------------------------

#: Where the child dies: (module attribute, before or after the call).
APPLY_KILL_POINTS = [
    ("bot.runs.store.RunHandle.write_artifact", "before"),  # approval.json not yet written
    ("bot.runs.store.RunHandle.write_artifact", "after"),  # written, not yet recorded
    ("bot.repo.plumbing.commit_tree", "before"),
    ("bot.repo.plumbing.commit_tree", "after"),  # a commit object exists, not yet in the audit log
    ("bot.repo.plumbing.update_ref_cas", "before"),
    ("bot.repo.plumbing.update_ref_cas", "after"),  # the branch moved, not yet recorded
    ("bot.runs.store.RunHandle.transition", "before"),
]


def _approve_and_apply_in_child(data: str, key: str, run_id: str, digest: str, target: str,
                                when: str) -> None:
    import importlib

    from bot.engine.local import apply_local

    module_name, _, attribute = target.rpartition(".")
    try:
        owner: object = importlib.import_module(module_name)
    except ModuleNotFoundError:  # a method: module.Class.method
        module_name, _, cls = module_name.rpartition(".")
        owner = getattr(importlib.import_module(module_name), cls)
    original = getattr(owner, attribute)
    calls = {"n": 0}

    def dying(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if attribute == "transition" and calls["n"] < 2:  # approving's: die at the apply's
            return original(*args, **kwargs)
        if when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, attribute, dying)
    store = FolderRunStore(Path(data), Path(key))
    approve_local(store, run_id, digest, "maintainer")
    apply_local(store, run_id, "maintainer")


def test_kill_9_while_approving_and_applying_moves_the_branch_once(
    store: FolderRunStore, make_repo: Callable[..., Path]
) -> None:
    """Killed at each point of approve and apply, then finished by running the same commands
    again: the branch ends on exactly one merge commit of the approved patch, the audit log
    records one ref update, and the bundle verifies."""
    from bot.engine.local import apply_local
    from bot.runs.view import RunView

    ctx = multiprocessing.get_context("fork")
    for target, when in APPLY_KILL_POINTS:
        repo = make_repo({"requirements.txt": "requests==2.0.0\n"},
                         name=f"r-{APPLY_KILL_POINTS.index((target, when))}")
        git(repo, "checkout", "-q", "-b", "feature")
        commit_files(repo, {"requirements.txt": "requests==2.1.0\n"}, "feature")
        git(repo, "checkout", "-q", "main")
        commit_files(repo, {"requirements.txt": "requests==2.2.0\n"}, "main")
        head = git(repo, "rev-parse", "feature").strip()
        run_id = start_local_run(store, repo, "main", "feature", "me", OFFLINE)
        assert Engine(store).advance(run_id).state is RunState.AWAITING_APPROVAL
        digest = RunView.load(store, run_id).patch_hash
        assert digest is not None
        child = ctx.Process(target=_approve_and_apply_in_child,
                            args=(str(store.data_dir), str(store.signing_key), run_id, digest,
                                  target, when))
        child.start()
        child.join()
        assert child.exitcode == -signal.SIGKILL, (target, when)
        # the person runs the commands again: approve if the approval did not stick, apply
        if store.read_model(run_id, "approval.json", ApprovalRecord) is None:
            approve_local(store, run_id, digest, "maintainer")
        applied = apply_local(store, run_id, "maintainer")
        assert applied.outcome is Outcome.APPLIED, (target, when, applied.reason)
        tip = git(repo, "rev-parse", "feature").strip()
        assert git(repo, "rev-parse", f"{tip}^1").strip() == head, (target, when)
        assert git(repo, "show", f"{tip}:requirements.txt") == "requests==2.2.0\n"
        moves = [line for line in git(repo, "reflog", "feature").splitlines() if "gwi:" in line]
        assert len(moves) == 1, (target, when, moves)  # the branch moved once, by gwi
        trail = store.read_chain(run_id).events
        assert sum(e.action is AuditAction.REF_UPDATED for e in trail) == 1, (target, when)
        assert verify_bundle(store.run_dir(run_id)).ok, (target, when)
