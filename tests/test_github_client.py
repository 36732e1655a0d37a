"""The typed GitHub client against the fake GitHub: one story per test."""

from __future__ import annotations

from conftest import GITHUB_INSTALLATION_ID, GITHUB_REPO

from bot.github.models import CheckOutput


async def test_create_and_update_check_run(fake_github, github_app) -> None:
    repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    run = await repo.create_check_run("gwi", "c" * 40, status="in_progress")
    done = await repo.update_check_run(
        run.id, conclusion="success", output=CheckOutput(title="ok", summary="all good")
    )
    assert done.status == "completed" and done.conclusion == "success"
    stored = fake_github.check_runs[run.id]
    assert [h.get("status") or h.get("conclusion") for h in stored.history] == [
        "in_progress",
        "success",
    ]
    assert stored.output["summary"] == "all good"
