"""version_bump on Maven and Gradle versions, shifted version lists and release trains."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bot.cli import main
from bot.merge import Strategy, engine, merge_texts
from bot.merge.policy import EVERYTHING
from bot.merge.strategies.versions import version_key
from tests.support import commit_files, git


@pytest.fixture(autouse=True)
def _every_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the strategy proves, apart from the shipped policy (test_merge_policy.py)."""
    monkeypatch.setattr(engine, "_POLICY", [EVERYTHING])


def merged(base: str, ours: str, theirs: str, path: str) -> tuple[Strategy, str]:
    result = merge_texts(base, ours, theirs, path)
    assert len(result.regions) == 1, result.text
    return result.regions[0].strategy, result.text


def test_version_key_orders_maven_and_pep440_qualifiers() -> None:
    assert version_key("4.1.0-M1") > version_key("4.0.4-SNAPSHOT")
    assert version_key("4.1.0-RC1") > version_key("4.1.0-M2")
    assert version_key("4.1.0-SNAPSHOT") > version_key("4.1.0-RC1")
    assert version_key("4.1.0") > version_key("4.1.0-SNAPSHOT")
    assert version_key("5.3.2.RELEASE") == version_key("5.3.2")
    assert version_key("6.2.0.Final") > version_key("6.2.0.CR1")
    assert version_key("1.0b2") > version_key("1.0a5")
    assert version_key("1.0a1") > version_key("1.0.dev3")
    assert version_key("1.0.post1") > version_key("1.0")


def test_both_sides_bumping_a_gradle_library_keep_the_milestone_over_the_snapshot() -> None:
    base = 'dependencies {\n\tlibrary("Spring Kafka", "4.0.3") {\n\t}\n}\n'
    ours = base.replace("4.0.3", "4.1.0-M1")
    theirs = base.replace("4.0.3", "4.0.4-SNAPSHOT")
    strategy, text = merged(base, ours, theirs, path="platform/build.gradle")
    assert strategy is Strategy.VERSION_BUMP
    assert text == ours


def test_a_shifted_version_matrix_is_not_a_bump() -> None:
    # Ours added a Ruby at the top and shifted the others down; theirs bumped in place.
    base = "rvm:\n  - &ruby1 2.3.1\n  - &ruby2 2.2.5\n  - &jruby jruby-9.1.2.0\nscript: make\n"
    ours = ("rvm:\n  - &ruby1 2.4.0\n  - &ruby2 2.3.1\n  - &ruby3 2.2.5\n"
            "  - &jruby jruby-9.1.2.0\nscript: make\n")
    theirs = "rvm:\n  - &ruby1 2.3.3\n  - &ruby2 2.2.6\n  - &jruby jruby-9.1.7.0\nscript: make\n"
    strategy, _ = merged(base, ours, theirs, path=".travis.yml")
    assert strategy is Strategy.CONFLICT


GRADLE = (
    'dependencies {\n\tlibrary("Spring Kafka", "4.0.3") {\n\t}\n'
    + "".join(f'\tlibrary("Filler {n}", "1.{n}.0") {{\n\t}}\n' for n in range(6))
    + '\tlibrary("Spring Batch", "6.0.4") {\n\t}\n}\n'
)


def test_release_trains_settle_for_the_newer_line_and_show_the_older_lines_other_bumps() -> None:
    # A maintenance branch merged forward: its snapshot bump of Spring Batch would merge in
    # cleanly beside main's milestone of Spring Kafka, mixing two dependency sets. The
    # region keeps main's line; the branch's other bump becomes a conflict for a person.
    ours = GRADLE.replace("4.0.3", "4.1.0-M1")
    theirs = GRADLE.replace("4.0.3", "4.0.4-SNAPSHOT").replace("6.0.4", "6.0.5-SNAPSHOT")
    result = merge_texts(GRADLE, ours, theirs, "platform/build.gradle")
    assert [r.strategy for r in result.regions] == [Strategy.VERSION_BUMP, Strategy.CONFLICT]
    assert not result.clean
    bump, shown = result.regions
    assert "older release line" in bump.explanation
    assert "left for a person" in shown.explanation
    assert shown.surfaced and not bump.surfaced and not shown.resolved
    assert '"Spring Kafka", "4.1.0-M1"' in result.text
    assert shown.ours_text == '\tlibrary("Spring Batch", "6.0.4") {\n'
    assert shown.theirs_text == '\tlibrary("Spring Batch", "6.0.5-SNAPSHOT") {\n'
    assert result.text.count("<<<<<<<") == 1
    # Without that clean bump the region is settled and the file is clean.
    theirs = GRADLE.replace("4.0.3", "4.0.4-SNAPSHOT")
    result = merge_texts(GRADLE, ours, theirs, "platform/build.gradle")
    assert result.clean and result.text == ours
    # Without strategies the merge is git's: one region, no span shown.
    plain = merge_texts(GRADLE, ours, theirs, "platform/build.gradle", resolve=False)
    assert len(plain.regions) == 1


def test_a_release_replacing_its_snapshot_is_a_new_version() -> None:
    # Theirs released 4.0.3 (dropping -SNAPSHOT); ours moved on to 4.1.0-RC1.
    base = GRADLE.replace("4.0.3", "4.0.3-SNAPSHOT")
    ours = GRADLE.replace("4.0.3", "4.1.0-RC1")
    strategy, text = merged(base, ours, GRADLE, path="platform/build.gradle")
    assert strategy is Strategy.VERSION_BUMP
    assert text == ours


PACKAGE = (
    '{\n  "name": "express",\n  "version": "4.19.2",\n  "description": "web framework",\n'
    '  "license": "MIT",\n  "repository": "expressjs/express",\n'
    '  "dependencies": {\n    "accepts": "~1.3.8",\n    "send": "0.18.0"\n  }\n}\n'
)


def test_the_newer_release_line_keeps_its_own_version_when_the_older_changed_nothing_else() -> None:
    # 4.20.0 released on the 4.x branch, merged into main at 5.0.0-beta.3: main's line.
    ours = PACKAGE.replace('"4.19.2"', '"5.0.0-beta.3"')
    theirs = PACKAGE.replace('"4.19.2"', '"4.20.0"')
    strategy, text = merged(PACKAGE, ours, theirs, path="package.json")
    assert strategy is Strategy.VERSION_BUMP
    assert text == ours
    # When the 4.x branch also bumped a dependency that merges in cleanly, whether that
    # bump belongs on main is a person's call: it is shown as a conflict of its own.
    theirs = theirs.replace('"0.18.0"', '"0.19.0"')
    result = merge_texts(PACKAGE, ours, theirs, "package.json")
    assert [r.strategy for r in result.regions] == [Strategy.VERSION_BUMP, Strategy.CONFLICT]
    assert '"version": "5.0.0-beta.3"' in result.text and not result.clean


def test_a_forward_merge_run_shows_the_older_lines_bump_to_a_person(
    make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # main (the run's head) at 4.1 and its maintenance branch at 4.0.x, merged forward.
    repo = make_repo({"platform/build.gradle": GRADLE})
    git(repo, "checkout", "-q", "-b", "forward")
    commit_files(repo, {"platform/build.gradle": GRADLE.replace("4.0.3", "4.1.0-M1")}, "4.1")
    git(repo, "checkout", "-q", "main")
    commit_files(repo, {"platform/build.gradle": GRADLE.replace("4.0.3", "4.0.4-SNAPSHOT")
                        .replace("6.0.4", "6.0.5-SNAPSHOT")}, "4.0.x")
    assert main(["run", "--repo", str(repo), "--base", "main", "--head", "forward"]) == 0
    out = capsys.readouterr().out
    assert "platform/build.gradle" in out and "1 of 2 regions" in out
    assert "1 of them: an older release line's version change" in out
    assert "gwi approve" not in out  # the file is not clean: nothing to approve yet
