"""`gwi run`, `gwi approve`, `gwi apply` as a person types them."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from tests.fake_llm import json_text
from tests.support import commit_files, git


def _repo(make_repo: Callable[..., Path]) -> Path:
    repo = make_repo({"settings.py": "LIMIT = 10\n"})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"settings.py": "LIMIT = 20\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"settings.py": "LIMIT = 30\n"}, "main")
    return repo


def test_run_approve_apply_from_the_command_line(
    make_repo: Callable[..., Path], fake_llm: Any, llm_settings_for: Callable[..., Any],
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo(make_repo)
    settings = llm_settings_for("openai")
    monkeypatch.setenv("GWI_LLM_PROVIDER", "openai")
    monkeypatch.setenv("GWI_LLM_MODEL", settings.model)
    monkeypatch.setenv("GWI_LLM_BASE_URL", settings.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", settings.api_key.get_secret_value())
    fake_llm.add(json_text({"value": 0, "reasons": []}),
                 json_text({"regions": [{"region": 0, "resolution": "LIMIT = 30\n",
                                         "explanation": "newer", "confidence": 90}]}))
    assert main(["run", "--repo", str(repo), "--base", "main", "--head", "feature"]) == 0
    out = capsys.readouterr().out
    assert "awaiting_approval" in out and "complexity" in out and "review: approvable" in out
    approve = re.search(r"gwi approve (\S+) --patch-hash (sha256:[0-9a-f]{64})", out)
    assert approve, out
    run_id, digest = approve.groups()
    assert main(["approve", run_id, "--patch-hash", digest[:30]]) == 1
    assert "64 lowercase hex" in capsys.readouterr().err
    assert main(["approve", run_id, "--patch-hash", digest, "--as", "maya"]) == 0
    assert "approved by maya" in capsys.readouterr().out
    assert main(["apply", run_id]) == 0
    assert "applied" in capsys.readouterr().out
    assert git(repo, "show", "feature:settings.py") == "LIMIT = 30\n"
    assert main(["runs", "verify", run_id]) == 0


def test_run_offline_ends_honestly_and_resume(make_repo: Callable[..., Path],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    repo = _repo(make_repo)
    assert main(["run", "--repo", str(repo), "--base", "main", "--head", "feature"]) == 0
    out = capsys.readouterr().out
    assert "done (needs_human)" in out and "blocker" in out
    run_id = re.search(r"run (\S+): created", out).group(1)  # type: ignore[union-attr]
    assert main(["run", "--resume", run_id]) == 0
    assert "needs_human" in capsys.readouterr().out


def test_run_refuses_bad_arguments(make_repo: Callable[..., Path],
                                   capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo()
    assert main(["run", "--repo", str(repo), "--base", "main"]) == 2
    assert "needs --base and --head" in capsys.readouterr().err
    assert main(["run", "--resume", "not-a-run"]) == 2
    assert "not a run id" in capsys.readouterr().err
    assert main(["run", "--repo", str(repo), "--base", "main", "--head", "nope"]) == 2
    assert "does not name a commit" in capsys.readouterr().err
    assert main(["apply", "20260101T000000Z-aaaaaaaaaaaaaaaaaaaa"]) == 2
    assert "no run" in capsys.readouterr().err
