"""Issue 17, item 1: a bundle's history cannot be rewritten without the key, nor cut back to an
earlier signed point without failing against the anchor gwi published; an unsigned bundle is
never "OK"; a bundle signed by a key nobody trusts is not OK; old bundles verify after a key
rotation; a bundle folder anywhere (an unpacked download) verifies against a given key.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main
from bot.queue.factory import open_queue
from bot.runs.audit import build_line, parse_chain
from bot.runs.bundle import seal_signature_message
from bot.runs.folder_store import FolderRunStore
from bot.runs.pg_bundles import PostgresRunStore
from bot.runs.signing import Signer, load_or_create_signer
from bot.runs.store import RunStore
from bot.schemas.audit import AuditAction
from bot.schemas.state import Outcome, RunState
from bot.settings import load_settings
from tests import builders as b
from tests.run_store_backends import put_back


def _awaiting_then_applied(store: RunStore, snapshot: Path) -> str:
    """A run that waited for approval (its bundle copied to ``snapshot`` then), then finished."""
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.transition(RunState.TRIAGED, reason="scored")
        run.transition(RunState.PLANNED, reason="planned")
        run.transition(RunState.RESOLVING, reason="conflicts")
        run.write_artifact("patch.diff", b.PATCH)
        run.transition(RunState.REVIEW, reason="resolved")
        run.transition(RunState.AWAITING_APPROVAL, reason="ready")
    with store.materialise(run_id) as folder:
        shutil.copytree(folder, snapshot)
    with store.open(run_id) as run:
        run.transition(RunState.APPLYING, reason="approved by maya")
        run.transition(RunState.DONE, reason="pushed", outcome=Outcome.APPLIED)
    return run_id


def _env(monkeypatch: pytest.MonkeyPatch, store: RunStore, key: Path | None = None) -> None:
    if isinstance(store, PostgresRunStore):
        monkeypatch.setenv("GWI_DATABASE_URL", store.url)
        monkeypatch.setenv("GWI_DATA_DIR", str(store.signing_key.parent / "data"))
    else:
        assert isinstance(store, FolderRunStore)
        monkeypatch.delenv("GWI_DATABASE_URL", raising=False)
        monkeypatch.setenv("GWI_DATA_DIR", str(store.data_dir))
    monkeypatch.setenv("GWI_SIGNING_KEY", str(key or store.signing_key))


def _rewrite(folder: Path, keep: int, *, signer: Signer | None,
             edit_reason: str | None = None) -> None:
    """Keep the first ``keep`` lines, re-hash the whole chain (no secret needed), and either drop
    every seal's signature or sign the seals with ``signer`` (someone else's key)."""
    run_id = folder.name
    events = parse_chain((folder / "audit.log").read_bytes(), run_id).events[:keep]
    out, prev = [], "0" * 64
    for event in events:
        data = dict(event.data)
        if edit_reason and event.action is AuditAction.STATE_TRANSITION:
            data["reason"] = edit_reason
        if event.action is AuditAction.ARTIFACT_WRITTEN and data["artifact"] == "run.json":
            data.pop("signature", None)
            data.pop("public_key", None)
            if signer is not None:
                message = seal_signature_message(run_id, event.seq, prev, str(data["sha256"]))
                data.update(public_key=signer.public_key_hex, signature=signer.sign(message))
        line, new = build_line(seq=event.seq, ts=event.ts, run_id=run_id, actor=event.actor,
                               action=event.action, data=data, prev=prev)
        prev = new.hash
        out.append(line)
    (folder / "audit.log").write_bytes(b"".join(out))


def _cut_back(folder: Path, snapshot: Path) -> None:
    """Put back the bundle as it was while awaiting approval: its files and its log's prefix."""
    for entry in folder.iterdir():
        entry.unlink()
    for entry in snapshot.iterdir():
        shutil.copy2(entry, folder / entry.name)


def test_a_history_rewritten_without_the_key_is_never_ok(
        store: FolderRunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The attack as it was seen: a finished run cut back to awaiting_approval, its log
    re-hashed without the signatures. Today's verify said "OK ... not signed yet"."""
    _env(monkeypatch, store)
    snapshot = tmp_path / "then"
    run_id = _awaiting_then_applied(store, snapshot)
    folder = store.run_dir(run_id)
    kept = len(parse_chain((snapshot / "audit.log").read_bytes(), run_id).events)
    _cut_back(folder, snapshot)
    _rewrite(folder, kept, signer=None, edit_reason="looks fine")
    assert main(["runs", "verify", run_id]) == 3
    out = capsys.readouterr()
    assert "UNSIGNED" in out.err and "OK" not in out.out + out.err
    assert main(["runs", "verify", run_id, "--json"]) == 3
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == "unsigned" and doc["ok"] is False and doc["chain_intact"] is True


def test_a_bundle_cut_back_to_an_earlier_signed_point_fails_against_its_anchor(
        runs: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """In either store: the files of a folder put back, or the rows of the database."""
    store = runs
    _env(monkeypatch, store)
    snapshot = tmp_path / "then"
    run_id = _awaiting_then_applied(store, snapshot)
    head = store.read_chain(run_id).events[-1]
    # every line kept is gwi's own, signed
    put_back(store, run_id, {p.name: p.read_bytes() for p in snapshot.iterdir()})
    # Without an anchor nothing in the bundle can tell: it is a genuine earlier state.
    assert main(["runs", "verify", run_id]) == 0
    assert "no anchor checked" in capsys.readouterr().out
    assert main(["runs", "verify", run_id, "--anchor", f"{head.seq}:{head.hash}"]) == 1
    assert "NOT MATCHED" in capsys.readouterr().err
    # The anchor gwi published is also kept in the queue database, and used by default.
    queue = open_queue(load_settings())

    async def keep() -> None:
        index = queue.run_index()
        await index.ensure_schema()
        await index.record_anchor(run_id, head.seq, head.hash)

    try:
        asyncio.run(keep())
    finally:
        queue.close()
    assert main(["runs", "verify", run_id, "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["anchor"] == {"seq": head.seq, "hash": head.hash, "source": "queue database",
                             "matched": False}
    with pytest.raises(SystemExit) as bad:  # argparse: bad input
        main(["runs", "verify", run_id, "--anchor", "1:" + "0" * 63])
    assert bad.value.code == 2


def test_a_bundle_re_signed_by_an_unknown_key_is_not_trusted(
        store: FolderRunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    snapshot = tmp_path / "then"
    run_id = _awaiting_then_applied(store, snapshot)
    folder = store.run_dir(run_id)
    kept = len(parse_chain((snapshot / "audit.log").read_bytes(), run_id).events)
    _cut_back(folder, snapshot)
    mallory = load_or_create_signer(tmp_path / "mallory.pem", announce=False)
    _rewrite(folder, kept, signer=mallory, edit_reason="looks fine")
    # With no key file present (a verifier elsewhere), nothing is trusted: never OK.
    _env(monkeypatch, store, key=tmp_path / "absent.pem")
    assert main(["runs", "verify", run_id]) == 1
    err = capsys.readouterr().err
    assert "signature: valid" in err and "NOT TRUSTED" in err and "give --public-key" in err
    assert not (tmp_path / "absent.pem").exists()  # verifying never makes a key
    # With gwi's key present, the re-signed bundle is not gwi's.
    _env(monkeypatch, store)
    assert main(["runs", "verify", run_id]) == 1
    assert "NOT TRUSTED" in capsys.readouterr().err


def test_old_bundles_verify_after_a_key_rotation(
        store: FolderRunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _env(monkeypatch, store)
    old_run = _awaiting_then_applied(store, tmp_path / "then")
    old_key = store.signer.public_key_hex
    assert main(["key", "rotate"]) == 0
    assert old_key in capsys.readouterr().out
    assert main(["runs", "verify", old_run]) == 0
    capsys.readouterr()
    rotated = FolderRunStore(store.data_dir, store.signing_key)
    assert rotated.signer.public_key_hex != old_key
    new_run = _awaiting_then_applied(rotated, tmp_path / "then2")
    assert main(["runs", "verify", new_run]) == 0
    # A retired key taken out of the ring (it leaked) is trusted no more.
    ring = store.signing_key.with_name(store.signing_key.name + ".retired")
    ring.write_text("# emptied after a leak\n")
    assert main(["runs", "verify", old_run]) == 1
    assert main(["runs", "verify", new_run]) == 0


def test_an_unpacked_bundle_verifies_anywhere_against_a_given_key(
        store: FolderRunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _env(monkeypatch, store)
    run_id = _awaiting_then_applied(store, tmp_path / "then")
    assert main(["key", "show", "--json"]) == 0
    key = json.loads(capsys.readouterr().out)
    pem = tmp_path / "gwi.pub"
    pem.write_text(key["pem"])
    download = tmp_path / "downloads" / run_id
    shutil.copytree(store.run_dir(run_id), download)
    # Elsewhere: no data folder, no key of its own.
    monkeypatch.setenv("GWI_DATA_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GWI_SIGNING_KEY", str(tmp_path / "elsewhere" / "none.pem"))
    assert main(["runs", "verify", str(download), "--public-key", str(pem)]) == 0
    assert main(["runs", "verify", str(download), "--public-key", key["public_key"],
                 "--json"]) == 0
    capsys.readouterr()
    assert main(["runs", "verify", str(download)]) == 1  # signed, but by no key trusted here
    assert main(["runs", "verify", str(tmp_path / "downloads")]) == 2  # not a bundle


def test_a_public_key_that_is_not_one_is_bad_input(
        store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    _env(monkeypatch, store)
    run_id = _awaiting_then_applied(store, tmp_path / "then")
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello\n")
    for given in ("garbage", "ab" * 32 + "zz", str(not_a_key)):
        assert main(["runs", "verify", run_id, "--public-key", given]) == 2
        assert "not an Ed25519 public key" in capsys.readouterr().err
