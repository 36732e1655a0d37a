"""Files a tool writes are regenerated, never merged as text, and the plan says so; what the
resolver settles carries its confidence into the plan."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.engine.local import start_local_run
from bot.engine.pipeline import Engine
from bot.merge.confidence import CONFIDENCE
from bot.repo.analysis import ConflictKind, analyse
from bot.runs.store import RunStore
from bot.schemas.plan import PlannedAction, PlanResult
from bot.schemas.run import AgentConfig, Provider
from tests.support import commit_files, git

PINS = "gen/requirements.txt"


def _pins_conflict(make_repo: Callable[..., Path], attributes: str | None) -> Path:
    files = {PINS: "requests==2.0.0\n"}
    if attributes is not None:
        files[".gitattributes"] = attributes
    repo = make_repo(files)
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {PINS: "requests==2.1.0\n"}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {PINS: "requests==2.2.0\n"}, "main")
    return repo


def _conflict(repo: Path):  # type: ignore[no-untyped-def]
    head = git(repo, "rev-parse", "feature").strip()
    base = git(repo, "rev-parse", "main").strip()
    [conflict] = analyse(repo, head, base).files
    return conflict


def test_without_the_attribute_the_pins_are_settled(make_repo: Callable[..., Path]) -> None:
    assert _conflict(_pins_conflict(make_repo, None)).resolved


@pytest.mark.parametrize("line", ["gen/* linguist-generated", "gen/requirements.txt -diff",
                                  "*.txt linguist-generated=true"])
def test_marked_generated_it_stays_a_conflict_to_regenerate(
    make_repo: Callable[..., Path], line: str
) -> None:
    conflict = _conflict(_pins_conflict(make_repo, line + "\n"))
    assert conflict.kind is ConflictKind.UNMERGEABLE
    assert "regenerate" in conflict.reason and not conflict.resolved


def test_a_later_line_can_take_the_mark_back(make_repo: Callable[..., Path]) -> None:
    repo = _pins_conflict(make_repo, "gen/* linguist-generated\ngen/requirements.txt "
                                     "-linguist-generated\n")
    assert _conflict(repo).resolved


def _plan(store: RunStore, repo: Path) -> PlanResult:
    run_id = start_local_run(store, repo, "main", "feature", "me",
                             AgentConfig(provider=Provider.OFFLINE))
    Engine(store).advance(run_id)
    plan = store.read_model(run_id, "plan.json", PlanResult)
    assert plan is not None
    return plan


def test_the_plan_shows_each_resolutions_confidence(
    make_repo: Callable[..., Path], store: RunStore
) -> None:
    plan = _plan(store, _pins_conflict(make_repo, None))
    [planned] = plan.files
    assert planned.action is PlannedAction.RESOLVER
    assert planned.confidence == CONFIDENCE["version_bump"]
    md = store.read_bytes(store.list_ids()[0], "plan.md")
    assert md is not None and f"| {CONFIDENCE['version_bump']}% |" in md.decode()


def test_the_plan_says_to_regenerate_a_lock_file(
    make_repo: Callable[..., Path], store: RunStore
) -> None:
    lock = '{\n  "name": "app",\n  "lockfileVersion": 3,\n  "version": "1.0.0"\n}\n'
    repo = make_repo({"package-lock.json": lock})
    git(repo, "checkout", "-q", "-b", "feature")
    commit_files(repo, {"package-lock.json": lock.replace("1.0.0", "1.1.0")}, "feature")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"package-lock.json": lock.replace("1.0.0", "1.2.0")}, "main")
    [planned] = _plan(store, repo).files
    assert planned.action is PlannedAction.HUMAN and planned.confidence is None
    assert any("regenerate with `npm install`" in why for why in planned.human_reasons)
