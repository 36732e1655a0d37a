"""What a new user trips over on the command line: where gwi keeps its data and key, heads that
are not branches, aborting, approving twice, empty settings, closed pipes, the version, the demo."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import BROKEN_PIPE_EXIT, main
from bot.errors import GwiError
from bot.runs.folder_store import FolderRunStore
from bot.runs.store_factory import open_run_store
from bot.schemas.audit import AuditAction
from bot.settings import load_settings
from tests.support import commit_files, git


def _pins(make_repo: Callable[..., Path]) -> Path:
    """main and feature bump the same pin: a conflict the offline resolver settles."""
    repo = make_repo({"requirements.txt": "requests==2.0.0\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"requirements.txt": "requests==2.1.0\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"requirements.txt": "requests==2.2.0\n"}, "main")
    return repo


def _awaiting(make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
              ) -> tuple[Path, str, str]:
    repo = _pins(make_repo)
    assert main(["run", "--repo", str(repo), "--base", "main", "--head", "feature"]) == 0
    found = re.search(r"gwi approve (\S+) --patch-hash (sha256:[0-9a-f]{64})",
                      capsys.readouterr().out)
    assert found
    return repo, found.group(1), found.group(2)


def test_the_data_folder_is_the_users_not_the_current_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("GWI_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    assert load_settings().data_dir == tmp_path / "xdg" / "gwi"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_settings().data_dir == tmp_path / "home" / ".local" / "share" / "gwi"


def test_no_signing_key_is_created_inside_a_git_work_tree(
    make_repo: Callable[..., Path]
) -> None:
    repo = make_repo({"a.txt": "a\n"})
    store = FolderRunStore(repo / ".gwi", repo / ".gwi" / "signing-key.pem")
    with pytest.raises(GwiError, match="inside the git work tree"):
        _ = store.signer
    assert not (repo / ".gwi" / "signing-key.pem").exists()
    told = FolderRunStore(repo / ".gwi", repo / ".gwi" / "signing-key.pem", key_in_work_tree=True)
    assert told.signer.public_key_hex


def test_a_commit_id_is_refused_as_head(make_repo: Callable[..., Path],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    repo = _pins(make_repo)
    sha = git(repo, "rev-parse", "feature").strip()
    assert main(["run", "--repo", str(repo), "--base", "main", "--head", sha]) == 2
    assert "is not a local branch" in capsys.readouterr().err


def test_abort_ends_a_local_run_once(make_repo: Callable[..., Path],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    _, run_id, _ = _awaiting(make_repo, capsys)
    assert main(["abort", run_id, "--reason", "not today"]) == 0
    assert "aborted (not today)" in capsys.readouterr().out
    assert main(["abort", run_id]) == 2
    assert "already aborted" in capsys.readouterr().err


def test_a_second_approval_is_refused_and_recorded(make_repo: Callable[..., Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    _, run_id, digest = _awaiting(make_repo, capsys)
    assert main(["approve", run_id, "--patch-hash", digest, "--as", "maya"]) == 0
    capsys.readouterr()
    assert main(["approve", run_id, "--patch-hash", digest, "--as", "sam"]) == 1
    assert re.search(r"already approved by maya at \d{4}-", capsys.readouterr().err)
    store = open_run_store(load_settings())
    refusals = [e for e in store.read_chain(run_id).events
                if e.action is AuditAction.APPROVAL_REFUSED]
    assert [e.data["code"] for e in refusals] == ["already_approved"]
    assert refusals[0].actor.id == "sam"


def test_an_empty_path_setting_is_bad_input(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GWI_SIGNING_KEY", "")
    assert main(["runs", "list"]) == 2
    assert "bad setting GWI_SIGNING_KEY: is set but empty" in capsys.readouterr().err


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "bot", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ})
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # as `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait() == BROKEN_PIPE_EXIT
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert re.fullmatch(r"gwi \S+\n", capsys.readouterr().out)


def test_demo_keep_keeps_its_repository_and_explains_the_approval(
    capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--keep"]) == 0
    out = capsys.readouterr().out
    kept = re.search(r"kept the demo repository: (\S+)", out)
    assert kept and (Path(kept.group(1)) / ".git").is_dir()
    assert "nothing is pushed until a person approves this exact patch" in out
    assert "the demo plays that person" in out
    subprocess.run(["rm", "-rf", str(Path(kept.group(1)).parent)], check=True)


def test_a_run_left_to_a_person_names_the_files_and_the_rest(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo({"app.py": "LIMIT = 10\n", "requirements.txt": "requests==2.0.0\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"app.py": "LIMIT = 20\n", "requirements.txt": "requests==2.1.0\n"}, "f")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"app.py": "LIMIT = 30\n", "requirements.txt": "requests==2.2.0\n"}, "m")
    assert main(["run", "--repo", str(repo), "--base", "main", "--head", "feature"]) == 0
    out = capsys.readouterr().out
    assert "done (needs_human)" in out
    assert "next step: resolve these files by hand" in out and "    app.py" in out
    assert "patch.diff (take them with `git apply`" in out
    store = open_run_store(load_settings())
    plan = store.read_bytes(store.list_ids()[-1], "plan.md")
    assert plan is not None and "## Next step" in plan.decode() and "- `app.py`" in plan.decode()


@pytest.mark.parametrize("command", ["show", "verify"])
def test_an_unknown_run_is_bad_input_for_every_runs_command(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", command, "20260101T000000Z-aaaaaaaaaaaaaaaaaaaa"]) == 2
    assert "no run 20260101T000000Z-aaaaaaaaaaaaaaaaaaaa" in capsys.readouterr().err
