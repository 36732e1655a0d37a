"""The run with an LLM provider (against the fake LLM server), then approve and apply: the
LLM's proposals get the same checks as the resolver's, invalid output fails the run, and only
the approved bytes ever reach the branch."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.agents.llm import make_llm
from bot.engine.approval import ApprovalRefused
from bot.engine.local import apply_local, approve_local, start_local_run
from bot.engine.pipeline import Engine
from bot.errors import GwiError
from bot.runs.folder_store import FolderRunStore
from bot.runs.verify import verify_bundle
from bot.runs.view import RunView
from bot.schemas.audit import AuditAction
from bot.schemas.common import sha256_hex
from bot.schemas.state import Outcome, RunState
from tests.fake_llm import Delay, Status, Text, json_text
from tests.support import commit_files, git

KEEP = {"value": 0, "reasons": []}


@pytest.fixture
def repo(make_repo: Callable[..., Path]) -> Path:
    """Both sides rewrite one setting; the deterministic resolver cannot choose."""
    repo = make_repo({"settings.py": "import os\n\nLIMIT = 10\nNAME = 'app'\n",
                      "notes.txt": "a\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"settings.py": "import os\n\nLIMIT = 20\nNAME = 'app'\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"settings.py": "import os\n\nLIMIT = 30\nNAME = 'app'\n",
                        "notes.txt": "b\n"}, "main")
    git(repo, "checkout", "-q", "--detach")
    return repo


def proposal(text: str, confidence: int = 90) -> Text:
    return json_text({"regions": [{"region": 0, "resolution": text,
                                   "explanation": "the base branch's newer limit",
                                   "confidence": confidence}]})


def _run(store: FolderRunStore, repo: Path, llm_settings: Any) -> tuple[str, Engine]:
    engine = Engine(store, llm=make_llm(llm_settings))
    run_id = start_local_run(store, repo, "main", "feature", "me", llm_settings.agent_config)
    engine.advance(run_id)
    return run_id, engine


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_an_llm_resolution_is_reviewed_approved_and_applied(
    store: FolderRunStore, repo: Path, fake_llm: Any, llm_settings_for: Callable[..., Any],
    provider: str
) -> None:
    fake_llm.add(json_text(KEEP), proposal("LIMIT = 30\n"))
    run_id, _ = _run(store, repo, llm_settings_for(provider))
    view = RunView.load(store, run_id)
    assert view.ctx.state is RunState.AWAITING_APPROVAL, view.ctx.history[-1].reason
    assert view.ctx.agents.provider.value == provider
    assert view.resolve is not None
    row = {f.path: f for f in view.resolve.files}["settings.py"]
    assert row.resolver.value == "llm" and row.confidence == 80  # capped
    calls = [e for e in store.read_chain(run_id).events if e.action is AuditAction.AGENT_CALLED]
    assert [c.data["for"] for c in calls] == ["triage.json", "resolve.json"]
    assert "LIMIT = 30" in str(calls[1].data["reply"])
    assert view.patch_hash is not None

    before = git(repo, "rev-parse", "feature").strip()
    approve_local(store, run_id, view.patch_hash, "maintainer")
    applied = apply_local(store, run_id, "maintainer")
    assert applied.state is RunState.DONE and applied.outcome is Outcome.APPLIED
    new = git(repo, "rev-parse", "feature").strip()
    assert new == applied.after and new != before
    parents = git(repo, "rev-list", "--parents", "-n1", new).split()
    assert parents[1:] == [before, git(repo, "rev-parse", "main").strip()]
    assert git(repo, "show", f"{new}:settings.py") == "import os\n\nLIMIT = 30\nNAME = 'app'\n"
    assert git(repo, "show", f"{new}:notes.txt") == "b\n"
    # the commit is exactly the approved patch applied to the head
    diff = git(repo, "diff", "--binary", "--full-index", before, new).encode()
    header, _, body = (view.patch or b"").partition(b"\n\n")
    assert sha256_hex(diff) == sha256_hex(body)
    assert header.decode().split("\n") == [f"gwi patch for run {run_id}", f"head {before}",
                                            f"base {parents[2]}"]
    report = verify_bundle(store.run_dir(run_id), trusted_keys={store.signer.public_key_hex})
    assert report.ok, report.problems
    actions = [e.action.value for e in store.read_chain(run_id).events]
    assert actions.index("approval_recorded") < actions.index("commit_created") < actions.index(
        "ref_updated")


@pytest.mark.parametrize(
    ("replies", "message"),
    [
        ([Text("this is not JSON")], "invalid triage.json"),
        ([json_text({"value": 5, "reasons": ["security_risk"]})], "invalid triage.json"),
        ([json_text({"value": 1, "reasons": ["well_tested"]})], "invalid triage.json"),
        ([json_text(KEEP), Text('{"regions": [{"region": 0}]}')], "invalid resolve.json"),
    ],
)
def test_invalid_llm_output_fails_the_run_and_is_audited(
    store: FolderRunStore, repo: Path, fake_llm: Any, llm_settings_for: Callable[..., Any],
    replies: list[Any], message: str
) -> None:
    fake_llm.add(*replies)
    run_id, _ = _run(store, repo, llm_settings_for("openai"))
    ctx = store.read_context(run_id)
    assert ctx.state is RunState.FAILED and ctx.error and message in ctx.error
    failed = [e for e in store.read_chain(run_id).events
              if e.action is AuditAction.SCHEMA_VALIDATION_FAILED]
    assert len(failed) == 1 and failed[0].data["errors"]
    assert verify_bundle(store.run_dir(run_id)).ok


@pytest.mark.parametrize(
    ("replies", "message"),
    [([Delay(3.0), Delay(3.0)], "no reply within"), ([Status(500), Status(500)], "500")],
)
def test_provider_failures_fail_the_run_with_a_readable_reason(
    store: FolderRunStore, repo: Path, fake_llm: Any, llm_settings_for: Callable[..., Any],
    replies: list[Any], message: str
) -> None:
    fake_llm.add(*replies)
    run_id, _ = _run(store, repo, llm_settings_for("anthropic", timeout=0.5))
    ctx = store.read_context(run_id)
    assert ctx.state is RunState.FAILED
    assert ctx.error and ctx.error.startswith("triage: ") and message in ctx.error.lower()
    fake_llm.assert_secret_free(ctx.error)


@pytest.mark.parametrize(
    ("resolution", "confidence", "why"),
    [
        ("<<<<<<< head\nLIMIT = 20\n=======\nLIMIT = 30\n>>>>>>> base\n", 90, "markers"),
        ("LIMIT = (30\n", 90, "does not parse"),
        ("LIMIT = 30\n", 20, "not confident"),
    ],
)
def test_a_bad_llm_proposal_is_not_used(
    store: FolderRunStore, repo: Path, fake_llm: Any, llm_settings_for: Callable[..., Any],
    resolution: str, confidence: int, why: str
) -> None:
    fake_llm.add(json_text(KEEP), proposal(resolution, confidence))
    run_id, _ = _run(store, repo, llm_settings_for("openai"))
    view = RunView.load(store, run_id)
    assert view.ctx.outcome is Outcome.NEEDS_HUMAN
    assert view.resolve is not None
    row = {f.path: f for f in view.resolve.files}["settings.py"]
    assert row.status.value == "unresolved" and why in row.explanation


def test_a_proposal_that_drops_an_added_line_is_not_used(
    store: FolderRunStore, make_repo: Callable[..., Path], fake_llm: Any,
    llm_settings_for: Callable[..., Any]
) -> None:
    repo = make_repo({"app.py": "A = 1\nB = 1\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"app.py": "A = 2\nB = 1\nFEATURE = True\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"app.py": "A = 1\nB = 2\n"}, "main")
    fake_llm.add(json_text(KEEP), proposal("A = 2\nB = 2\n"))
    run_id, _ = _run(store, repo, llm_settings_for("openai"))
    view = RunView.load(store, run_id)
    assert view.ctx.outcome is Outcome.NEEDS_HUMAN, view.ctx.history[-1].reason
    assert view.resolve is not None
    assert "drops 1 line" in view.resolve.files[0].explanation


# -- approve and apply: what is refused, and that refusing writes nothing -------------------------

@pytest.fixture
def ready(store: FolderRunStore, repo: Path, fake_llm: Any,
          llm_settings_for: Callable[..., Any]) -> tuple[str, str]:
    fake_llm.add(json_text(KEEP), proposal("LIMIT = 30\n"))
    run_id, _ = _run(store, repo, llm_settings_for("openai"))
    view = RunView.load(store, run_id)
    assert view.patch_hash is not None
    return run_id, view.patch_hash


def _refusals(store: FolderRunStore, run_id: str, action: AuditAction) -> list[str]:
    return [str(e.data["code"]) for e in store.read_chain(run_id).events if e.action is action]


def test_approval_names_the_exact_patch(store: FolderRunStore, ready: tuple[str, str],
                                        tmp_path: Path) -> None:
    run_id, digest = ready
    other = "sha256:" + sha256_hex(b"another run's patch")
    for bad in (digest[:20], digest.upper().replace("SHA256", "sha256"), other,
                digest.replace("sha256:", ""), digest + "0", "sha256:" + "g" * 64):
        with pytest.raises(ApprovalRefused):
            approve_local(store, run_id, bad, "maintainer")
    codes = _refusals(store, run_id, AuditAction.APPROVAL_REFUSED)
    assert codes == ["malformed_hash", "malformed_hash", "wrong_hash", "malformed_hash",
                     "malformed_hash", "malformed_hash"]
    with pytest.raises(ApprovalRefused, match="no approval"):
        apply_local(store, run_id, "maintainer")
    record = approve_local(store, run_id, digest, "maintainer")
    with pytest.raises(ApprovalRefused, match="already approved by maintainer at") as again:
        approve_local(store, run_id, digest, "maintainer")  # said and recorded, not silent
    assert again.value.code == "already_approved"
    assert _refusals(store, run_id, AuditAction.APPROVAL_REFUSED)[-1] == "already_approved"
    assert store.read_model(run_id, "approval.json", type(record)) == record


def test_apply_refuses_when_the_head_moved(store: FolderRunStore, repo: Path,
                                           ready: tuple[str, str]) -> None:
    run_id, digest = ready
    approve_local(store, run_id, digest, "maintainer")
    git(repo, "checkout", "-q", "feature")
    commit_files(repo, {"late.py": "x = 1\n"}, "a late push")
    git(repo, "checkout", "-q", "--detach")
    moved = git(repo, "rev-parse", "feature")
    applied = apply_local(store, run_id, "maintainer")
    assert applied.outcome is Outcome.STALE and applied.after is None
    assert git(repo, "rev-parse", "feature") == moved
    assert store.read_context(run_id).state is RunState.ABORTED
    assert verify_bundle(store.run_dir(run_id)).ok


def test_apply_refuses_when_the_base_moved(store: FolderRunStore, repo: Path,
                                           ready: tuple[str, str]) -> None:
    run_id, digest = ready
    approve_local(store, run_id, digest, "maintainer")
    before = git(repo, "rev-parse", "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"late.py": "x = 1\n"}, "base moves on")
    git(repo, "checkout", "-q", "--detach")
    assert apply_local(store, run_id, "maintainer").outcome is Outcome.STALE
    assert git(repo, "rev-parse", "feature") == before


def test_apply_refuses_a_patch_changed_after_approval(store: FolderRunStore, repo: Path,
                                                      ready: tuple[str, str]) -> None:
    run_id, digest = ready
    approve_local(store, run_id, digest, "maintainer")
    before = git(repo, "rev-parse", "feature")
    patch = store.run_dir(run_id) / "patch.diff"
    patch.write_bytes(patch.read_bytes().replace(b"LIMIT = 30", b"LIMIT = 99"))
    with pytest.raises(Exception, match="does not match"):
        apply_local(store, run_id, "maintainer")
    assert git(repo, "rev-parse", "feature") == before
    assert not verify_bundle(store.run_dir(run_id)).ok


def test_apply_refuses_a_forged_approval(store: FolderRunStore, repo: Path,
                                         ready: tuple[str, str]) -> None:
    run_id, digest = ready
    approve_local(store, run_id, digest, "maintainer")
    approval = store.run_dir(run_id) / "approval.json"
    doc = json.loads(approval.read_text())
    doc["approver"]["login"] = "mallory"
    approval.write_text(json.dumps(doc))
    before = git(repo, "rev-parse", "feature")
    with pytest.raises(Exception, match="does not match|signature"):
        apply_local(store, run_id, "maintainer")
    assert git(repo, "rev-parse", "feature") == before


def test_apply_refuses_a_checked_out_branch_and_twice(store: FolderRunStore, repo: Path,
                                                      ready: tuple[str, str]) -> None:
    run_id, digest = ready
    approve_local(store, run_id, digest, "maintainer")
    git(repo, "checkout", "-q", "feature")
    with pytest.raises(ApprovalRefused, match="checked out"):
        apply_local(store, run_id, "maintainer")
    git(repo, "checkout", "-q", "--detach")
    assert apply_local(store, run_id, "maintainer").outcome is Outcome.APPLIED
    with pytest.raises(ApprovalRefused):
        apply_local(store, run_id, "maintainer")
    assert _refusals(store, run_id, AuditAction.APPLY_REFUSED) == ["checked_out"]


def test_an_apply_cut_short_after_the_commit_resumes_without_a_second_commit(
    store: FolderRunStore, repo: Path, ready: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id, digest = ready
    approve_local(store, run_id, digest, "maintainer")

    def crash(*args: object, **kwargs: object) -> bool:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr("bot.repo.plumbing.update_ref_cas", crash)
    with pytest.raises(KeyboardInterrupt):
        apply_local(store, run_id, "maintainer")
    monkeypatch.undo()
    assert store.read_context(run_id).state is RunState.APPLYING
    # `gwi run --resume` does not push: it says which command finishes the apply
    with pytest.raises(GwiError, match=f"is applying: .*`gwi apply {run_id}` finishes it"):
        Engine(store).advance(run_id)
    assert store.read_context(run_id).state is RunState.APPLYING
    applied = apply_local(store, run_id, "maintainer")
    commits = [e for e in store.read_chain(run_id).events
               if e.action is AuditAction.COMMIT_CREATED]
    assert len(commits) == 1 and applied.after == commits[0].data["commit"]
    assert git(repo, "rev-parse", "feature").strip() == applied.after
    assert verify_bundle(store.run_dir(run_id)).ok
