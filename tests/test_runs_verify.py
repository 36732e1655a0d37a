"""`gwi runs verify` catches every kind of tampering with a bundle, and names where."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main
from bot.runs.folder_store import FolderRunStore
from bot.runs.store import RunStore
from bot.runs.verify import verify_bundle
from bot.schemas.review import ReviewResult
from bot.schemas.state import Outcome, RunState
from tests import builders as b


def _finished_run(store: RunStore) -> str:
    run_id = store.create(b.context_fields())
    with store.open(run_id) as run:
        run.transition(RunState.TRIAGED, reason="scored")
        run.write_artifact("plan.md", "# Plan\nkeep both\n")
        run.transition(RunState.PLANNED, reason="planned")
        run.transition(RunState.RESOLVING, reason="conflicts")
        run.write_artifact("patch.diff", b.PATCH)
        run.transition(RunState.REVIEW, reason="resolved")
        run.write_artifact("review.json", ReviewResult.model_validate(b.review(run_id=run_id)))
        run.transition(RunState.DONE, reason="human", outcome=Outcome.NEEDS_HUMAN)
    return run_id


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _edit_line(index: int, edit: Callable[[dict[str, object]], None]) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        log = folder / "audit.log"
        lines = _lines(log)
        doc = json.loads(lines[index])
        edit(doc)
        lines[index] = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        log.write_bytes(b"".join(lines))
    return tamper


def _rewrite_lines(change: Callable[[list[bytes]], list[bytes]]) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        log = folder / "audit.log"
        log.write_bytes(b"".join(change(_lines(log))))
    return tamper


def _flip_byte(name: str, offset: int = 3) -> Callable[[Path], None]:
    def tamper(folder: Path) -> None:
        path = folder / name
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
    return tamper


def _set_reason(doc: dict[str, object]) -> None:
    data = doc["data"]
    assert isinstance(data, dict)
    data["reason"] = "edited"


def _swap(lines: list[bytes]) -> list[bytes]:
    lines[3], lines[4] = lines[4], lines[3]
    return lines


TAMPERS: dict[str, tuple[Callable[[Path], None], str]] = {
    "edit a field": (_edit_line(2, _set_reason), "line 3: its hash does not match"),
    "edit and rehash a line": (
        _edit_line(2, lambda d: d.update(ts="2030-01-01T00:00:00.000000Z")), "line 3"),
    "reformat a line": (
        _rewrite_lines(lambda ls: [ls[0].replace(b'","', b'", "', 1), *ls[1:]]), "line 1"),
    "delete a middle line": (_rewrite_lines(lambda ls: ls[:4] + ls[5:]), "line 5"),
    "delete the first line": (_rewrite_lines(lambda ls: ls[1:]), "line 1"),
    "reorder two lines": (_rewrite_lines(_swap), "line 4"),
    "truncate the last line (signature)": (
        _rewrite_lines(lambda ls: ls[:-1]), "not signed"),
    "truncate the last two lines": (
        _rewrite_lines(lambda ls: ls[:-2]), "does not end by sealing run.json"),
    "truncate to the middle": (
        _rewrite_lines(lambda ls: ls[:7]), "line"),
    "cut the last line in half": (
        _rewrite_lines(lambda ls: [*ls[:-1], ls[-1][:40]]), "incomplete"),
    "empty the log": (_rewrite_lines(lambda ls: []), "no events"),
    "duplicate a line": (_rewrite_lines(lambda ls: [*ls[:3], ls[2], *ls[3:]]), "line 4"),
    "change run.json by one byte": (_flip_byte("run.json", 20), "run.json"),
    "change plan.md by one byte": (_flip_byte("plan.md"), "plan.md"),
    "change patch.diff by one byte": (_flip_byte("patch.diff"), "patch.diff"),
    "change review.json by one byte": (_flip_byte("review.json", 40), "review.json"),
    "delete an artifact": (lambda f: (f / "plan.md").unlink(), "plan.md: missing"),
    "add an artifact": (
        lambda f: (f / "approval.json").write_text("{}"), "approval.json: not recorded"),
    "add a stray file": (lambda f: (f / "notes.txt").write_text("x"), "unexpected file"),
    "forge the signature": (
        _edit_line(-1, lambda d: d["data"].update(signature="00" * 64)),  # type: ignore[attr-defined]
        "line"),
}


@pytest.mark.parametrize("case", sorted(TAMPERS))
def test_each_tamper_is_caught(runs: RunStore, case: str) -> None:
    """On the bundle folder as either store materialises it (the folder store: the run's own)."""
    run_id = _finished_run(runs)
    with runs.materialise(run_id) as folder:
        assert verify_bundle(folder).ok
        tamper, where = TAMPERS[case]
        tamper(folder)
        report = verify_bundle(folder)
    assert not report.ok
    assert where in report.problems[0], report.problems


def test_a_signature_by_another_key_is_caught(store: FolderRunStore, tmp_path: Path) -> None:
    run_id = _finished_run(store)
    other = FolderRunStore(tmp_path / "other", tmp_path / "other.pem")
    report = verify_bundle(store.run_dir(run_id), trusted_keys={other.signer.public_key_hex})
    assert not report.ok and report.chain_intact and report.last_seal_signed
    assert report.key_trusted is False and report.verdict.value == "failed"
    assert any("NOT TRUSTED" in line for line in report.explain())


def test_a_forged_transition_rehashed_whole_is_caught_by_the_signature(store: FolderRunStore) -> None:
    """Someone who rewrites the whole chain consistently still cannot forge the signature."""
    run_id = _finished_run(store)
    folder = store.run_dir(run_id)
    from bot.runs.audit import build_line, parse_chain
    from bot.schemas.audit import AuditEvent

    events = list(parse_chain((folder / "audit.log").read_bytes(), run_id).events)
    out: list[bytes] = []
    prev = "0" * 64
    for event in events:
        data = dict(event.data)
        if event.action.value == "state_transition" and data["to"] == "planned":
            data["reason"] = "forged"
        line, new = build_line(seq=event.seq, ts=event.ts, run_id=run_id, actor=event.actor,
                               action=event.action, data=data, prev=prev)
        assert isinstance(new, AuditEvent)
        prev = new.hash
        out.append(line)
    (folder / "audit.log").write_bytes(b"".join(out))
    report = verify_bundle(folder)
    assert not report.ok
    assert "signature" in report.problems[0]


def test_cli_verify_list_show(store: FolderRunStore, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GWI_DATA_DIR", str(store.data_dir))
    monkeypatch.setenv("GWI_SIGNING_KEY", str(store.signing_key))
    run_id = _finished_run(store)
    assert main(["runs", "verify", run_id]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["runs", "list"]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["runs", "list", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["state"] == "done" and row["outcome"] == "needs_human"
    assert main(["runs", "show", run_id]) == 0
    out = capsys.readouterr().out
    assert "patch.diff" in out and "review" in out and b.PATCH_SHA in out
    assert main(["runs", "show", run_id, "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [h["state"] for h in doc["run"]["history"]][-1] == "done"
    assert {a["name"] for a in doc["artifacts"]} >= {"run.json", "audit.log", "patch.diff"}
    _flip_byte("plan.md")(store.run_dir(run_id))
    assert main(["runs", "verify", run_id]) == 1
    assert "plan.md" in capsys.readouterr().err
    assert main(["runs", "verify", "../../etc"]) == 2
    assert "not a run bundle folder" in capsys.readouterr().err
    assert main(["runs", "show", "20260101T000000Z-aaaaaaaaaaaaaaaaaaaa"]) == 2
    assert "no run" in capsys.readouterr().err


def test_key_show_never_creates_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "k" / "signing.pem"
    monkeypatch.setenv("GWI_SIGNING_KEY", str(key))
    assert main(["key", "show"]) == 2
    err = capsys.readouterr().err
    assert "there is no signing key" in err and "gwi key rotate" in err
    assert not key.exists() and not key.parent.exists()
    assert main(["key", "rotate"]) == 0
    made = capsys.readouterr().out
    assert main(["key", "show"]) == 0
    shown = capsys.readouterr()
    assert len(shown.out.strip()) == 64 and shown.out.strip() in made
    assert "BEGIN PUBLIC KEY" in shown.err and "fingerprint SHA256:" in shown.err
    assert key.stat().st_mode & 0o777 == 0o600
    key.write_text("not a key")
    assert main(["key", "show"]) == 2
    assert "not a PEM private key" in capsys.readouterr().err
