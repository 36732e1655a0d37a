"""Bundles a crash cut short where nobody would open them again. One whose creation was cut:
its audit log recorded run.json, but the rename that puts run.json in place never happened.
One that had just ended: run.json says done, the signature never came (both seen in the
SIGKILL test). Reading commands list it as unreadable without
hiding the others, and the server's reconciliation recovers it once it is old enough not to
be one another process is still creating (seen in the SIGKILL test, where such a bundle had
stayed invisible to every later scan)."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace
from typing import Any

import pytest

from bot.cli import main
from bot.github.handle_reconcile import read_orphan, recovered_state
from bot.runs.bundle import RunNotFound
from bot.runs.folder_store import FolderRunStore
from bot.runs.ids import run_created_at
from bot.runs.verify import verify_bundle
from bot.schemas.state import RunState
from tests import builders as b


def cut_short(store: FolderRunStore, monkeypatch: pytest.MonkeyPatch) -> str:
    """Create a run, killed between run.json's audit event and its rename."""
    before = set(store.list_ids())

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("power cut")

    with monkeypatch.context() as m:
        m.setattr("bot.runs.folder_store.commit_temp", crash)
        with pytest.raises(KeyboardInterrupt):
            store.create(b.context_fields())
    [run_id] = set(store.list_ids()) - before
    return run_id


def test_the_cut_short_bundle_has_a_log_and_no_run_json(
    store: FolderRunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = cut_short(store, monkeypatch)
    folder = store.run_dir(run_id)
    assert (folder / "audit.log").is_file() and not (folder / "run.json").exists()
    assert [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(RunNotFound):
        store.read_context(run_id)


def test_reconciliation_leaves_a_young_one_and_recovers_an_old_one(
    store: FolderRunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = cut_short(store, monkeypatch)
    gh: Any = SimpleNamespace(runs=store)
    created = run_created_at(run_id).timestamp()
    assert abs(created - time.time()) < 5
    # younger than the cut-off: perhaps another process is creating it this moment
    assert read_orphan(gh, run_id, cutoff=created - 1) is None
    assert not (store.run_dir(run_id) / "run.json").exists()
    # older: the interrupted rename is finished, and the run is what its log says
    ctx = read_orphan(gh, run_id, cutoff=created + 1)
    assert ctx is not None and ctx.run_id == run_id and ctx.state is RunState.QUEUED
    assert ctx.pull_request is not None and ctx.pull_request.number == 7
    assert store.read_context(run_id) == ctx
    assert verify_bundle(store.run_dir(run_id)).ok


def test_runs_list_shows_the_broken_bundle_beside_the_others(
    store: FolderRunStore, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GWI_DATA_DIR", str(store.data_dir))
    monkeypatch.setenv("GWI_SIGNING_KEY", str(store.signing_key))
    good = store.create(b.context_fields())
    bad = cut_short(store, monkeypatch)
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{good}  queued  octo/app#7" in out
    assert f"{bad}  unreadable: run {bad} has no run.json" in out
    assert f"gwi runs verify {bad}" in out
    assert main(["runs", "list", "--json"]) == 0
    rows = {row["run_id"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert rows[good]["state"] == "queued"
    assert rows[bad] == {"run_id": bad, "error": f"run {bad} has no run.json"}


def test_run_ids_tell_their_creation_second() -> None:
    assert run_created_at("20261125T114914Z-hwd7enhiytv7bli37hnx").isoformat() == (
        "2026-11-25T11:49:14+00:00")


def test_a_run_that_ended_without_its_signature_is_signed_when_reconciled(
    store: FolderRunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = store.create(b.context_fields())

    def crash(*args: object) -> None:
        raise KeyboardInterrupt("power cut")

    with monkeypatch.context() as m:
        m.setattr("bot.runs.store.RunHandle._sign", crash)
        with pytest.raises(KeyboardInterrupt), store.open(run_id) as run:
            run.fail("something went wrong")
    assert store.read_context(run_id).state is RunState.FAILED
    report = verify_bundle(store.run_dir(run_id), trusted_keys={store.signer.public_key_hex})
    assert not report.ok and "not signed" in report.problems[0]
    gh: Any = SimpleNamespace(runs=store)
    assert recovered_state(gh, run_id) is RunState.FAILED
    assert verify_bundle(store.run_dir(run_id), trusted_keys={store.signer.public_key_hex}).ok
