"""Golden triage results of real conflicts and synthetic edge cases: any change to the rubric,
the path rules or the resolver's reach shows up here as a loud, reviewable diff."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.repo.analysis import analyse
from bot.scoring.scorer import extract_features, triage_result
from tests.conftest import FIXTURES
from tests.support import commit_files, git

GOLDEN_DIR = FIXTURES / "scoring"
GOLDEN_FILE = GOLDEN_DIR / "golden.json"
REGENERATE = os.environ.get("GWI_REGENERATE_GOLDEN") == "1"


def _repo_from_triple(make_repo: Callable[..., Path], folder: Path) -> Path:
    path = json.loads((folder / "meta.json").read_text())["path"]
    repo = make_repo({path: (folder / "base").read_bytes()})
    git(repo, "checkout", "-q", "-b", "pr")
    commit_files(repo, {path: (folder / "ours").read_bytes()}, "pr change")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {path: (folder / "theirs").read_bytes()}, "main change")
    return repo


def _synthetic(make_repo: Callable[..., Path], name: str) -> Path:
    """Edge cases real triples do not cover: several files, deletions, binaries, secrets."""
    base = {"app.py": "def a():\n    return 1\n", "docs/guide.md": "# Guide\n\nOld.\n",
            "logo.png": b"\x89PNG\r\n\x1a\n\x00\x01", "config/.env": "TOKEN=x\n"}
    repo = make_repo(base)
    git(repo, "checkout", "-q", "-b", "pr")
    pr: dict[str, str | bytes | None]
    main_side: dict[str, str | bytes | None]
    if name == "synthetic-docs-only-clean":
        pr, main_side = {"docs/guide.md": "# Guide\n\nNew words.\n"}, {"app.py": "x = 1\n"}
    elif name == "synthetic-modify-delete":
        pr, main_side = {"app.py": None}, {"app.py": "def a():\n    return 2\n"}
    elif name == "synthetic-binary-and-secret":
        pr = {"logo.png": b"\x89PNG\r\n\x1a\n\x00\x02", "config/.env": "TOKEN=y\n"}
        main_side = {"logo.png": b"\x89PNG\r\n\x1a\n\x00\x03", "config/.env": "TOKEN=z\n"}
    elif name == "synthetic-many-files":
        pr = {f"src/m{i}.py": f"def f{i}():\n    return 'pr'\n" for i in range(12)}
        main_side = {f"src/m{i}.py": f"def f{i}():\n    return 'main'\n" for i in range(4)}
    else:
        raise AssertionError(name)
    commit_files(repo, pr, "pr change")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, main_side, "main change")
    return repo


SYNTHETIC = ["synthetic-binary-and-secret", "synthetic-docs-only-clean", "synthetic-many-files",
             "synthetic-modify-delete"]
REAL = sorted(p.name for p in GOLDEN_DIR.iterdir() if (p / "meta.json").exists())


def _triage(repo: Path) -> dict[str, Any]:
    analysis = analyse(repo, git(repo, "rev-parse", "pr").strip(),
                       git(repo, "rev-parse", "main").strip())
    result = triage_result(None, extract_features(repo, analysis))
    return result.model_dump(mode="json", exclude={"run_id", "schema_version"})


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    return json.loads(GOLDEN_FILE.read_text()) if GOLDEN_FILE.exists() else {}


@pytest.fixture(scope="module")
def regenerated() -> dict[str, Any]:
    out: dict[str, Any] = {}
    yield out
    if REGENERATE:
        GOLDEN_FILE.write_text(json.dumps(dict(sorted(out.items())), indent=2) + "\n")


def test_there_are_enough_real_fixtures() -> None:
    assert len(REAL) >= 8
    projects = {name.rsplit("-", 1)[0] for name in REAL}
    assert projects == {"flask", "requests", "pytest", "express", "socket.io"}


@pytest.mark.parametrize("name", REAL + SYNTHETIC)
def test_golden(name: str, make_repo: Callable[..., Path], golden: dict[str, Any],
                regenerated: dict[str, Any]) -> None:
    if name in SYNTHETIC:
        repo = _synthetic(make_repo, name)
    else:
        repo = _repo_from_triple(make_repo, GOLDEN_DIR / name)
    got = _triage(repo)
    regenerated[name] = got
    if REGENERATE:
        return
    assert name in golden, f"no golden result for {name}: see tests/fixtures/scoring/README.md"
    assert got == golden[name], (
        f"triage of {name} changed; if that is intended, regenerate the golden file "
        "(tests/fixtures/scoring/README.md)"
    )


def test_golden_cases_cover_the_routes_and_the_rule_kinds(golden: dict[str, Any]) -> None:
    if REGENERATE:
        pytest.skip("regenerating")
    routes = {case["route"] for case in golden.values()}
    assert {"deterministic", "agent", "human"} <= routes
    fired = {hit["rule"] for case in golden.values() for hit in case["breakdown"]}
    assert {"conflicts", "unresolved_regions", "unmergeable_files", "secrets_material",
            "docs_or_tests_only", "dependency_change"} <= fired


def test_cli_triage_is_byte_identical_across_runs(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = _repo_from_triple(make_repo, GOLDEN_DIR / REAL[0])
    args = ["triage", "--repo", str(repo), "--base", "main", "--head", "pr", "--json"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    assert json.loads(first)["final"] >= 1
    assert main(args[:-1]) == 0
    human = capsys.readouterr().out
    assert "complexity" in human and "rules:" in human and "base" in human


def test_cli_triage_refuses_bad_input(
    make_repo: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = make_repo()
    assert main(["triage", "--repo", str(repo), "--base", "main", "--head", "nope"]) == 2
    assert "does not name a commit" in capsys.readouterr().err
    assert main(["triage", "--repo", str(tmp_path), "--base", "a", "--head", "b"]) == 2
    assert "not a git repository" in capsys.readouterr().err
    assert main(["triage", "--repo", str(repo), "--base=--upload-pack=x", "--head", "main"]) == 2
    assert "not a revision" in capsys.readouterr().err
