"""The run bundle: creation, the one writer, the one state change, locks, crashes, bad names.

The tests taking ``runs`` are the run store's contract: they run against the folder store and
against PostgreSQL (tests/run_store_backends.py). Those taking ``store`` look at the folder
store's own files (temporary files, a torn line, flock).
"""

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
from bot.runs.store import RunStore
from bot.runs.verify import verify_bundle
from bot.schemas.audit import AuditAction
from bot.schemas.common import sha256_hex
from bot.schemas.review import ReviewResult
from bot.schemas.run import Actor, ActorType
from bot.schemas.state import InvalidTransition, Outcome, RunState
from tests import builders as b
from tests.run_store_backends import spec, store_from_spec, tamper, verify

AGENT = Actor(type=ActorType.AGENT, id="reviewer")


def _actions(store: RunStore, run_id: str) -> list[str]:
    return [e.action.value for e in store.read_chain(run_id).events]


def test_create_makes_a_sealed_queued_run(runs: RunStore) -> None:
    run_id = runs.create(b.context_fields())
    check_run_id(run_id)
    assert sorted(runs.snapshot(run_id)) == ["audit.log", "run.json"]
    with runs.materialise(run_id) as folder:
        assert sorted(p.name for p in folder.iterdir()) == ["audit.log", "run.json"]
        assert folder.name == run_id and verify_bundle(folder).ok
    ctx = runs.read_context(run_id)
    assert ctx.state is RunState.QUEUED and ctx.audit_seq == 0
    assert _actions(runs, run_id) == ["run_created", "artifact_written"]
    assert runs.list_ids() == [run_id] and runs.exists(run_id)
    assert runs.list_ids(since=run_id[:16]) == [run_id]
    assert runs.list_ids(since="99990101T000000Z") == []


def test_run_ids_are_unguessable_and_distinct(runs: RunStore) -> None:
    ids = {runs.create(b.context_fields()) for _ in range(20)}
    assert len(ids) == 20
    assert len({i.split("-")[1] for i in ids}) == 20


def test_a_whole_run_writes_every_artifact_and_verifies(runs: RunStore) -> None:
    store = runs
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
    report = verify(store, run_id, trusted_keys={store.signer.public_key_hex})
    assert report.ok, report.problems
    assert report.signed_by == [store.signer.public_key_hex]
    ctx = store.read_context(run_id)
    assert [h.state.value for h in ctx.history] == [
        "queued", "triaged", "planned", "resolving", "review", "done"]
    assert ctx.outcome is Outcome.NEEDS_HUMAN
    assert store.read_model(run_id, "review.json", ReviewResult) == review
    assert _actions(store, run_id)[-1] == "audit_signed"


def test_an_invalid_transition_leaves_the_run_unchanged(runs: RunStore) -> None:
    store = runs
    run_id = store.create(b.context_fields())
    log = store.read_bytes(run_id, "audit.log")
    with store.open(run_id) as run:
        with pytest.raises(InvalidTransition, match="allowed from queued"):
            run.transition(RunState.DONE, reason="skip", outcome=Outcome.APPLIED)
        assert run.ctx.state is RunState.QUEUED
    assert store.read_bytes(run_id, "audit.log") == log


def test_a_finished_run_is_immutable(runs: RunStore) -> None:
    store = runs
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.transition(RunState.ABORTED, reason="closed", outcome=Outcome.CANCELLED)
        with pytest.raises(RunFinished):
            run.write_artifact("plan.md", "late")
        with pytest.raises(RunFinished):
            run.record(AuditAction.NOTE, {"x": 1})
    with store.open(run_id) as run:  # reopening a finished run adds nothing
        assert run.finished
    assert verify(store, run_id).ok


def test_unknown_and_escaping_names_are_refused(runs: RunStore) -> None:
    store = runs
    run_id = store.create(b.context_fields())
    for bad in ("../x", "..", "runs/../../etc", "a\x00b", "", "/etc/passwd", run_id + "/..",
                run_id.upper()):
        with pytest.raises(UnsafeName):
            check_run_id(bad)
        with pytest.raises(UnsafeName):
            store.read_bytes(bad, "run.json")
        with pytest.raises(UnsafeName):
            store.exists(bad)
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
    if isinstance(store, FolderRunStore):
        assert not (store.data_dir.parent / "escape.txt").exists()


def test_a_patch_hash_must_name_patch_diff(runs: RunStore) -> None:
    store = runs
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        review = ReviewResult.model_validate(b.review(run_id=run_id))
        with pytest.raises(GwiError, match="not the sha256 of patch.diff"):
            run.write_artifact("review.json", review)
        run.write_artifact("patch.diff", b.PATCH + b"tampered")
        with pytest.raises(GwiError, match="not the sha256 of patch.diff"):
            run.write_artifact("review.json", review)


def test_invalid_agent_output_fails_the_run_and_is_audited(runs: RunStore) -> None:
    store = runs
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
    assert verify(store, run_id).ok


def test_valid_agent_output_is_accepted(runs: RunStore) -> None:
    store = runs
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
    runs: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = runs
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
    report = verify(store, run_id)
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


def test_damage_is_refused_not_repaired(runs: RunStore) -> None:
    store = runs
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.write_artifact("plan.md", "plan\n")
    tamper(store, run_id, "plan.md", b"edited by hand\n")
    with pytest.raises(RunDamaged, match="plan.md does not match"), store.open(run_id):
        pass
    assert store.read_bytes(run_id, "plan.md") == b"edited by hand\n"  # left for a person


def _writer(kind: str, where: str, key: str, run_id: str) -> None:
    store = store_from_spec(kind, where, key)
    i = 0
    while True:
        with store.open(run_id) as run:
            run.write_artifact("plan.md", f"plan {i}\n" * 20000)
            run.record(AuditAction.NOTE, {"i": i})
        i += 1


def test_kill_9_at_random_points_never_tears_the_bundle(runs: RunStore) -> None:
    store = runs
    run_id = store.create(b.context_fields())
    ctx = multiprocessing.get_context("fork")
    for attempt in range(8):
        proc = ctx.Process(
            target=_writer, args=(*spec(store), run_id)
        )
        proc.start()
        time.sleep(0.05 + 0.037 * attempt)
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        plan = store.read_bytes(run_id, "plan.md")
        if plan is not None:  # never torn: one whole version
            lines = set(plan.decode().splitlines())
            assert len(lines) == 1
        with store.open(run_id) as run:
            assert run.ctx.state is RunState.QUEUED
        report = verify(store, run_id)
        assert report.ok, report.problems


def test_two_processes_are_serialised_by_the_run_lock(runs: RunStore, tmp_path: Path) -> None:
    store = runs
    run_id = store.create(b.context_fields())
    script = (
        "import sys; from tests.run_store_backends import store_from_spec;"
        "from bot.schemas.audit import AuditAction;"
        f"s = store_from_spec(*{spec(store)!r});"
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
    assert verify(store, run_id).ok


def test_reading_an_invalid_artifact_is_an_error(runs: RunStore) -> None:
    store = runs
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.write_artifact("patch.diff", b.PATCH)
    tamper(store, run_id, "review.json", b'{"verdict": "yes"}')
    with pytest.raises(RunDamaged, match="review.json is not valid"):
        store.read_model(run_id, "review.json", ReviewResult)
    assert sha256_hex(b.PATCH) == b.PATCH_SHA
