"""The run bundle: creation, the one writer, the one state change, locks, crashes, bad names."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.errors import GwiError
from bot.runs.bundle import RunDamaged, RunFinished, SchemaRejected
from bot.runs.folder_store import FolderRunStore
from bot.runs.ids import UnsafeName, check_artifact_name, check_run_id
from bot.runs.verify import verify_bundle
from bot.schemas.audit import AuditAction
from bot.schemas.common import sha256_hex
from bot.schemas.review import ReviewResult
from bot.schemas.run import Actor, ActorType
from bot.schemas.state import InvalidTransition, Outcome, RunState
from tests import builders as b

AGENT = Actor(type=ActorType.AGENT, id="reviewer")


def _actions(store: FolderRunStore, run_id: str) -> list[str]:
    return [e.action.value for e in store.read_chain(run_id).events]


def test_create_makes_a_sealed_queued_run(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    check_run_id(run_id)
    folder = store.run_dir(run_id)
    assert sorted(p.name for p in folder.iterdir()) == ["audit.log", "run.json"]
    ctx = store.read_context(run_id)
    assert ctx.state is RunState.QUEUED and ctx.audit_seq == 0
    assert _actions(store, run_id) == ["run_created", "artifact_written"]
    assert verify_bundle(folder).ok
    assert store.list_ids() == [run_id]


def test_run_ids_are_unguessable_and_distinct(store: FolderRunStore) -> None:
    ids = {store.create(b.context_fields()) for _ in range(20)}
    assert len(ids) == 20
    assert len({i.split("-")[1] for i in ids}) == 20


def test_a_whole_run_writes_every_artifact_and_verifies(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.transition(RunState.TRIAGED, reason="scored")
        run.write_artifact("plan.md", "# Plan\n")
        run.transition(RunState.PLANNED, reason="planned")
        run.transition(RunState.RESOLVING, reason="conflicts")
        digest = run.write_artifact("patch.diff", b.PATCH)
        assert digest == b.PATCH_SHA
        run.transition(RunState.REVIEW, reason="resolved")
        review = ReviewResult.model_validate(b.review(run_id=run_id))
        run.write_artifact("review.json", review, actor=AGENT)
        run.transition(RunState.DONE, reason="needs a person", outcome=Outcome.NEEDS_HUMAN)
    report = verify_bundle(store.run_dir(run_id), trusted_keys={store.signer.public_key_hex})
    assert report.ok, report.problems
    assert report.signed_by == [store.signer.public_key_hex]
    ctx = store.read_context(run_id)
    assert [h.state.value for h in ctx.history] == [
        "queued", "triaged", "planned", "resolving", "review", "done"]
    assert ctx.outcome is Outcome.NEEDS_HUMAN
    assert store.read_model(run_id, "review.json", ReviewResult) == review
    assert _actions(store, run_id)[-1] == "audit_signed"


def test_an_invalid_transition_leaves_the_run_unchanged(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    log = (store.run_dir(run_id) / "audit.log").read_bytes()
    with store.open(run_id) as run:
        with pytest.raises(InvalidTransition, match="allowed from queued"):
            run.transition(RunState.DONE, reason="skip", outcome=Outcome.APPLIED)
        assert run.ctx.state is RunState.QUEUED
    assert (store.run_dir(run_id) / "audit.log").read_bytes() == log


def test_a_finished_run_is_immutable(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.transition(RunState.ABORTED, reason="closed", outcome=Outcome.CANCELLED)
        with pytest.raises(RunFinished):
            run.write_artifact("plan.md", "late")
        with pytest.raises(RunFinished):
            run.record(AuditAction.NOTE, {"x": 1})
    with store.open(run_id) as run:  # reopening a finished run adds nothing
        assert run.finished
    assert verify_bundle(store.run_dir(run_id)).ok


def test_unknown_and_escaping_names_are_refused(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    for bad in ("../x", "..", "runs/../../etc", "a\x00b", "", "/etc/passwd", run_id + "/..",
                run_id.upper()):
        with pytest.raises(UnsafeName):
            check_run_id(bad)
        with pytest.raises(UnsafeName):
            store.run_dir(bad)
    for bad in ("notes.txt", "../run.json", "run.json/..", "plan.md\x00", "/tmp/x", "RUN.JSON"):
        with pytest.raises(UnsafeName):
            check_artifact_name(bad)
    with store.open(run_id) as run:
        with pytest.raises(UnsafeName):
            run.write_artifact("../../escape.txt", "x")
        with pytest.raises(GwiError, match="written by the store"):
            run.write_artifact("run.json", "{}")
        with pytest.raises(GwiError, match="written by the store"):
            run.write_artifact("audit.log", "{}")
        with pytest.raises(GwiError, match="takes a ReviewResult"):
            run.write_artifact("review.json", "{}")
    assert not (store.data_dir.parent / "escape.txt").exists()


def test_a_patch_hash_must_name_patch_diff(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        review = ReviewResult.model_validate(b.review(run_id=run_id))
        with pytest.raises(GwiError, match="not the sha256 of patch.diff"):
            run.write_artifact("review.json", review)
        run.write_artifact("patch.diff", b.PATCH + b"tampered")
        with pytest.raises(GwiError, match="not the sha256 of patch.diff"):
            run.write_artifact("review.json", review)


def test_invalid_agent_output_fails_the_run_and_is_audited(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        bad = json.dumps(b.review(run_id=run_id, verdict="blocked"))
        with pytest.raises(SchemaRejected, match="invalid review.json"):
            run.accept("review.json", ReviewResult, bad, actor=AGENT)
        assert run.ctx.state is RunState.FAILED
    events = store.read_chain(run_id).events
    failed = [e for e in events if e.action is AuditAction.SCHEMA_VALIDATION_FAILED]
    assert len(failed) == 1
    assert failed[0].actor == AGENT
    assert failed[0].data["schema"] == "ReviewResult"
    errors = failed[0].data["errors"]
    assert isinstance(errors, list) and "verdict" in json.dumps(errors)
    ctx = store.read_context(run_id)
    assert ctx.outcome is Outcome.ERROR and ctx.error and "invalid review.json" in ctx.error
    assert verify_bundle(store.run_dir(run_id)).ok


def test_valid_agent_output_is_accepted(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        value = run.accept("review.json", ReviewResult, b.review(run_id=run_id), actor=AGENT)
        assert value.verdict.value == "approvable"
        assert run.ctx.state is RunState.QUEUED


def test_a_crash_between_audit_event_and_rename_is_completed(
    store: FolderRunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.write_artifact("plan.md", "old plan\n")

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr("bot.runs.folder_store.commit_temp", crash)
    with pytest.raises(KeyboardInterrupt), store.open(run_id) as run:
        run.write_artifact("plan.md", "new plan\n")
    monkeypatch.undo()
    folder = store.run_dir(run_id)
    assert (folder / "plan.md").read_text() == "old plan\n"  # the old file, intact
    assert not verify_bundle(folder).ok  # interrupted: verify says so until the run is reopened
    with store.open(run_id) as run:
        assert run.events[-2].action is AuditAction.RECOVERED
    assert (folder / "plan.md").read_text() == "new plan\n"
    assert verify_bundle(folder).ok


def test_a_crash_before_the_audit_event_discards_the_partial_write(
    store: FolderRunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = store.create(b.context_fields())

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr("bot.runs.folder_store.append_line", crash)
    with pytest.raises(KeyboardInterrupt), store.open(run_id) as run:
        run.write_artifact("plan.md", "half\n")
    monkeypatch.undo()
    folder = store.run_dir(run_id)
    assert any(p.name.endswith(".tmp") for p in folder.iterdir())
    with store.open(run_id):
        pass
    assert not (folder / "plan.md").exists()
    assert not any(p.name.endswith(".tmp") for p in folder.iterdir())
    assert verify_bundle(folder).ok


def test_a_crash_after_a_transition_event_is_resealed(
    store: FolderRunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = store.create(b.context_fields())

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr("bot.runs.store.RunHandle._seal", crash)
    with pytest.raises(KeyboardInterrupt), store.open(run_id) as run:
        run.transition(RunState.ABORTED, reason="closed", outcome=Outcome.CANCELLED)
    monkeypatch.undo()
    assert store.read_context(run_id).state is RunState.QUEUED
    with store.open(run_id) as run:
        assert run.ctx.state is RunState.ABORTED
    report = verify_bundle(store.run_dir(run_id))
    assert report.ok and report.signed_by


def test_a_torn_audit_line_is_discarded_on_reopening(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    log = store.run_dir(run_id) / "audit.log"
    with open(log, "ab") as fh:
        fh.write(b'{"action":"note","seq":2,')
    assert not verify_bundle(store.run_dir(run_id)).ok
    with store.open(run_id) as run:
        recovered = [e for e in run.events if e.action is AuditAction.RECOVERED]
        assert "incomplete audit line" in json.dumps(recovered[0].data)
    assert verify_bundle(store.run_dir(run_id)).ok


def test_damage_is_refused_not_repaired(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.write_artifact("plan.md", "plan\n")
    (store.run_dir(run_id) / "plan.md").write_text("edited by hand\n")
    with pytest.raises(RunDamaged, match="plan.md does not match"), store.open(run_id):
        pass


def _writer(data_dir: str, key: str, run_id: str) -> None:
    store = FolderRunStore(Path(data_dir), Path(key))
    i = 0
    while True:
        with store.open(run_id) as run:
            run.write_artifact("plan.md", f"plan {i}\n" * 20000)
            run.record(AuditAction.NOTE, {"i": i})
        i += 1


def test_kill_9_at_random_points_never_tears_the_bundle(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    ctx = multiprocessing.get_context("fork")
    for attempt in range(8):
        proc = ctx.Process(
            target=_writer, args=(str(store.data_dir), str(store.signing_key), run_id)
        )
        proc.start()
        time.sleep(0.05 + 0.037 * attempt)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        plan = (store.run_dir(run_id) / "plan.md")
        if plan.exists():  # never torn: one whole version
            lines = set(plan.read_text().splitlines())
            assert len(lines) == 1
        with store.open(run_id) as run:
            assert run.ctx.state is RunState.QUEUED
        report = verify_bundle(store.run_dir(run_id))
        assert report.ok, report.problems


def test_two_processes_are_serialised_by_the_run_lock(store: FolderRunStore, tmp_path: Path) -> None:
    run_id = store.create(b.context_fields())
    script = (
        "import sys; from pathlib import Path; from bot.runs.folder_store import FolderRunStore;"
        "from bot.schemas.audit import AuditAction;"
        f"s = FolderRunStore(Path({str(store.data_dir)!r}), Path({str(store.signing_key)!r}));"
        "\nfor i in range(25):\n"
        "    with s.open(sys.argv[1]) as run:\n"
        "        run.record(AuditAction.NOTE, {'w': sys.argv[2], 'i': i})\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, run_id, str(n)]) for n in range(3)
    ]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    notes = [e for e in store.read_chain(run_id).events if e.action is AuditAction.NOTE]
    assert len(notes) == 75
    assert verify_bundle(store.run_dir(run_id)).ok


def test_reading_an_invalid_artifact_is_an_error(store: FolderRunStore) -> None:
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.write_artifact("patch.diff", b.PATCH)
    (store.run_dir(run_id) / "review.json").write_text('{"verdict": "yes"}')
    with pytest.raises(RunDamaged, match="review.json is not valid"):
        store.read_model(run_id, "review.json", ReviewResult)
    assert sha256_hex(b.PATCH) == b.PATCH_SHA
