"""Issue 15: run bundles readable and writable from any host. `gwi runs export RUN DIR` writes the
standard ``<run id>/`` folder byte for byte from either store, and `gwi runs verify` checks it
offline; the store is picked from the settings; in PostgreSQL an audit line and the artifact it
records commit together, the run's lock is an advisory lock that holds across connections (as
across hosts), and the migrations run once when two processes start at once.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from bot.cli import main
from bot.errors import GwiError
from bot.runs.bundle import RunNotFound
from bot.runs.folder_store import FolderRunStore
from bot.runs.pg_bundle_schema import SCHEMA_VERSION
from bot.runs.pg_bundles import PostgresRunStore
from bot.runs.store import RunStore
from bot.runs.store_factory import open_run_store
from bot.schemas.audit import AuditAction
from bot.schemas.state import Outcome, RunState
from bot.settings import load_settings
from tests import builders as b
from tests.run_store_backends import spec, store_from_spec, verify


def _finished_run(store: RunStore) -> str:
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.transition(RunState.TRIAGED, reason="scored")
        run.write_artifact("plan.md", "# Plan\nnon-ASCII kept: é ✓\n")
        run.transition(RunState.PLANNED, reason="planned")
        run.transition(RunState.RESOLVING, reason="conflicts")
        run.write_artifact("patch.diff", b.PATCH)
        run.transition(RunState.REVIEW, reason="resolved")
        run.transition(RunState.DONE, reason="needs a person", outcome=Outcome.NEEDS_HUMAN)
    return run_id


def _env(monkeypatch: pytest.MonkeyPatch, store: RunStore, tmp_path: Path) -> None:
    monkeypatch.setenv("GWI_DATA_DIR", str(store.data_dir) if isinstance(store, FolderRunStore)
                       else str(tmp_path / "data"))
    monkeypatch.setenv("GWI_SIGNING_KEY", str(store.signing_key))
    if isinstance(store, PostgresRunStore):
        monkeypatch.setenv("GWI_DATABASE_URL", store.url)
    else:
        monkeypatch.delenv("GWI_DATABASE_URL", raising=False)


def test_export_writes_the_standard_folder_byte_for_byte(runs: RunStore, tmp_path: Path) -> None:
    run_id = _finished_run(runs)
    folder = runs.export(run_id, tmp_path / "out")
    assert folder == tmp_path / "out" / run_id
    stored = runs.snapshot(run_id)
    assert sorted(p.name for p in folder.iterdir()) == sorted(stored)
    for name, data in stored.items():
        assert (folder / name).read_bytes() == data == runs.read_bytes(run_id, name)
    assert len(stored["audit.log"].splitlines()) == len(runs.read_chain(run_id).events)
    report = verify(runs, run_id, trusted_keys={runs.signer.public_key_hex})
    assert report.ok, report.problems
    with pytest.raises(GwiError, match="exists already"):
        runs.export(run_id, tmp_path / "out")  # nothing is overwritten
    with pytest.raises(RunNotFound):
        runs.export("20260101T000000Z-aaaaaaaaaaaaaaaaaaaa", tmp_path / "none")
    assert not (tmp_path / "none" / "20260101T000000Z-aaaaaaaaaaaaaaaaaaaa").exists()


def test_gwi_runs_export_then_verify_offline(runs: RunStore, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run_id = _finished_run(runs)
    _env(monkeypatch, runs, tmp_path)
    assert main(["runs", "verify", run_id]) == 0  # by id, from the store itself
    assert main(["runs", "list"]) == 0 and main(["runs", "show", run_id]) == 0
    shown = capsys.readouterr().out
    assert f"{run_id}  done (needs_human)" in shown and "patch.diff" in shown
    assert main(["runs", "export", run_id, str(tmp_path / "copy")]) == 0
    assert f"exported to {tmp_path / 'copy' / run_id}" in capsys.readouterr().out
    # Offline: no database, no data folder; the bundle and the public key are enough.
    monkeypatch.delenv("GWI_DATABASE_URL", raising=False)
    monkeypatch.setenv("GWI_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GWI_SIGNING_KEY", str(tmp_path / "elsewhere" / "none.pem"))
    bundle = str(tmp_path / "copy" / run_id)
    assert main(["runs", "verify", bundle, "--public-key", runs.signer.public_key_hex]) == 0
    log = tmp_path / "copy" / run_id / "audit.log"
    log.write_bytes(log.read_bytes().replace(b"needs a person", b"needs a robot!"))
    assert main(["runs", "verify", bundle, "--public-key", runs.signer.public_key_hex]) == 1
    assert main(["runs", "export", "not-a-run", str(tmp_path / "x")]) == 2


def test_the_settings_pick_the_store(pg_url: str, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GWI_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GWI_SIGNING_KEY", str(tmp_path / "key.pem"))
    monkeypatch.delenv("GWI_DATABASE_URL", raising=False)
    folder = open_run_store(load_settings())
    assert isinstance(folder, FolderRunStore)
    monkeypatch.setenv("GWI_DATABASE_URL", pg_url)
    store = open_run_store(load_settings())
    try:
        assert isinstance(store, PostgresRunStore)
        run_id = store.create(b.context_fields())
        assert folder.list_ids() == [] and store.list_ids() == [run_id]
        assert not (tmp_path / "data" / "runs").exists()  # nothing on the local disk
    finally:
        store.close()


def test_a_line_and_its_artifact_commit_together(pg_url: str, tmp_path: Path) -> None:
    """The database refuses the artifact's row: its audit line must not be stored either."""
    store = PostgresRunStore.connect(pg_url, tmp_path / "key.pem")
    try:
        run_id = store.create(b.context_fields())
        before = store.read_bytes(run_id, "audit.log")
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("ALTER TABLE run_artifacts ADD CONSTRAINT no_plan"
                         " CHECK (name <> 'plan.md')")
        with pytest.raises(psycopg.errors.CheckViolation), store.open(run_id) as run:
            run.write_artifact("plan.md", "refused\n")
        assert store.read_bytes(run_id, "audit.log") == before
        assert store.read_bytes(run_id, "plan.md") is None
        with store.open(run_id) as run:  # nothing to recover: the run is as it was
            assert run.events[-1].action is AuditAction.ARTIFACT_WRITTEN
        assert store.read_bytes(run_id, "audit.log") == before
        assert verify(store, run_id).ok
    finally:
        store.close()


def test_the_run_lock_excludes_another_store(runs: RunStore) -> None:
    """A second store on the same data (another host's process) waits for the lock."""
    run_id = runs.create(b.context_fields())
    other = store_from_spec(*spec(runs))
    entered = threading.Event()

    def second() -> None:
        with other.open(run_id) as run:
            entered.set()
            run.record(AuditAction.NOTE, {"by": "second"})

    try:
        with runs.open(run_id) as run:
            thread = threading.Thread(target=second)
            thread.start()
            time.sleep(0.5)
            assert not entered.is_set()
            run.record(AuditAction.NOTE, {"by": "first"})
        thread.join(timeout=30)
        assert entered.is_set()
    finally:
        other.close()
    notes = [e.data["by"] for e in runs.read_chain(run_id).events
             if e.action is AuditAction.NOTE]
    assert notes == ["first", "second"]
    assert verify(runs, run_id).ok


def test_pruning_deletes_only_finished_runs(runs: RunStore) -> None:
    going = runs.create(b.context_fields())
    done = _finished_run(runs)
    assert runs.delete_finished(going) is False and runs.exists(going)
    assert runs.delete_finished(done) is True
    assert not runs.exists(done) and runs.list_ids() == [going]
    with pytest.raises(RunNotFound):
        runs.read_bytes(done, "run.json")


def test_migrations_run_once_when_two_processes_start_at_once(pg_empty_url: str,
                                                             tmp_path: Path) -> None:
    stores: list[PostgresRunStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(PostgresRunStore.connect(pg_empty_url, tmp_path / "key.pem"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors and len(stores) == 4
        with psycopg.connect(pg_empty_url) as conn:
            rows = conn.execute("SELECT version FROM run_store_migrations").fetchall()
        assert [r[0] for r in rows] == list(range(1, SCHEMA_VERSION + 1))
        run_id = stores[0].create(b.context_fields())
        assert stores[3].read_context(run_id).run_id == run_id
    finally:
        for store in stores:
            store.close()


def test_an_unreachable_database_is_a_clear_error(tmp_path: Path) -> None:
    from bot.runs.pg_bundles import RunStoreUnavailable

    with pytest.raises(RunStoreUnavailable, match=r"cannot reach .*:\*\*\*@"):
        PostgresRunStore.connect("postgresql://gwi:secret@127.0.0.1:1/none",
                                 tmp_path / "key.pem")


def test_the_run_pages_read_either_store(runs: RunStore) -> None:
    """The page's bundle.tar.gz and its verification go through the materialised folder."""
    import io
    import tarfile

    from bot.pages.content import gather
    from bot.pages.routes import bundle_archive

    run_id = _finished_run(runs)
    with tarfile.open(fileobj=io.BytesIO(bundle_archive(runs, run_id))) as tar:
        files = {m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
                 for m in tar.getmembers() if m.isfile()}
    assert files == {f"{run_id}/{name}": data for name, data in runs.snapshot(run_id).items()}
    page = gather(runs, run_id, trusted_keys=frozenset({runs.signer.public_key_hex}),
                  anchor=None)
    assert page.verification.verdict == "ok" and page.verification.key_trusted
    with pytest.raises(RunNotFound):
        bundle_archive(runs, "20260101T000000Z-aaaaaaaaaaaaaaaaaaaa")


def test_a_line_edited_in_the_database_is_caught(pg_url: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Whoever can write the tables still cannot change history unnoticed: verify by id fails,
    and the run is refused, not repaired."""
    from bot.runs.bundle import RunDamaged

    store = PostgresRunStore.connect(pg_url, tmp_path / "key.pem")
    try:
        run_id = _finished_run(store)
        _env(monkeypatch, store, tmp_path)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            edited = conn.execute(
                "UPDATE run_audit SET line = convert_to(replace(convert_from(line, 'UTF8'),"
                " 'scored', 'forged'), 'UTF8') WHERE run_id = %s AND seq = 2", (run_id,))
            assert edited.rowcount == 1
        assert main(["runs", "verify", run_id]) == 1
        assert not verify(store, run_id).chain_intact
        with pytest.raises(RunDamaged, match="line 3"), store.open(run_id):
            pass
    finally:
        store.close()


def test_reading_a_run_in_postgres_does_not_wait_for_its_writer(pg_url: str,
                                                               tmp_path: Path) -> None:
    """A run page (export, verification) of a run whose step holds the lock for minutes (an LLM
    call) is answered at once, from what the writer has committed."""
    from bot.runs.verify import verify_bundle

    store = PostgresRunStore.connect(pg_url, tmp_path / "key.pem")
    try:
        run_id = store.create(b.context_fields())
        exported: list[Path] = []
        with store.open(run_id) as run:
            run.record(AuditAction.NOTE, {"step": "half way"})
            reader = threading.Thread(
                target=lambda: exported.append(store.export(run_id, tmp_path / "page")))
            reader.start()
            reader.join(timeout=10)
            assert exported, "the export waited for the run's lock"
        report = verify_bundle(exported[0])
        assert report.ok and report.events == len(store.read_chain(run_id).events)
    finally:
        store.close()


def test_the_signatures_are_rows_as_the_lines_hold_them(pg_url: str, tmp_path: Path) -> None:
    store = PostgresRunStore.connect(pg_url, tmp_path / "key.pem")
    try:
        run_id = _finished_run(store)
        events = store.read_chain(run_id).events
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT seq, kind, public_key, signature FROM run_signatures"
                                " WHERE run_id = %s ORDER BY seq", (run_id,)).fetchall()
            written = dict(conn.execute("SELECT name, written_seq FROM run_artifacts"
                                        " WHERE run_id = %s", (run_id,)).fetchall())
        expected = [(e.seq, "final" if e.action is AuditAction.AUDIT_SIGNED else "seal",
                     e.data["public_key"], e.data["signature"])
                    for e in events if "signature" in e.data]
        assert rows == expected and rows[-1][1] == "final" and len(rows) == 9
        assert {row[2] for row in rows} == {store.signer.public_key_hex}
        assert written["run.json"] == events[-2].seq  # the last seal wrote it
    finally:
        store.close()
