"""The typed GitHub client against the fake GitHub: one story per test."""

from __future__ import annotations

from bot.github.models import CheckOutput
from tests.conftest import GITHUB_INSTALLATION_ID, GITHUB_REPO


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


def _repo(github_app):
    return github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)


async def test_marked_comment_is_created_once_then_edited_in_place(fake_github, github_app) -> None:
    fake_github.add_pull(GITHUB_REPO, number=7)
    # Someone pasting gwi's marker must not hijack the status comment.
    fake_github.add_comment(GITHUB_REPO, 7, "<!-- gwi:status -->\nfake status", user="mallory")
    repo = _repo(github_app)
    first = await repo.upsert_marked_comment(7, "status", "Run queued")
    second = await repo.upsert_marked_comment(7, "status", "Run done")
    unchanged = await repo.upsert_marked_comment(7, "status", "Run done")
    assert first.id == second.id == unchanged.id
    ours = fake_github.comments[first.id]
    assert ours.user == "gwi-test[bot]"
    assert ours.body == "<!-- gwi:status -->\nRun done"
    assert ours.history == ["<!-- gwi:status -->\nRun queued"]
    assert len(fake_github.calls_to("issues/create-comment")) == 1
    assert len(fake_github.calls_to("issues/update-comment")) == 1
    assert fake_github.comments_on(GITHUB_REPO, 7)[0].body.endswith("fake status")


async def test_marker_search_follows_pagination(fake_github, github_app) -> None:
    fake_github.add_pull(GITHUB_REPO, number=2)
    for n in range(120):
        fake_github.add_comment(GITHUB_REPO, 2, f"comment {n}")
    target = fake_github.add_comment(GITHUB_REPO, 2, "<!-- gwi:plan -->\nplan")
    target.user = "gwi-test[bot]"
    found = await _repo(github_app).find_marked_comment(2, "plan")
    assert found is not None and found.id == target.id
    pages = [c.query.get("page", "1") for c in fake_github.calls_to("issues/list-comments")]
    assert pages == ["1", "2"]


def test_marker_names_cannot_break_out_of_the_html_comment() -> None:
    import pytest

    from bot.github.markers import comment_marker, has_marker, with_marker

    assert comment_marker("run:42") == "<!-- gwi:run:42 -->"
    for bad in ("x -->", "", "Upper", "a b"):
        with pytest.raises(ValueError):
            comment_marker(bad)
    assert has_marker("text\n  <!-- gwi:a -->  \nmore", "a")
    assert not has_marker("inline <!-- gwi:a --> only", "a")
    assert with_marker(with_marker("x", "a"), "a") == "<!-- gwi:a -->\nx"


async def test_comments_reactions_and_get(fake_github, github_app) -> None:
    fake_github.add_pull(GITHUB_REPO, number=4)
    command = fake_github.add_comment(GITHUB_REPO, 4, "/gwi approve sha256:" + "0" * 64)
    repo = _repo(github_app)
    got = await repo.get_comment(command.id)
    assert got is not None and got.body.startswith("/gwi approve") and got.user.login == "someone"
    assert await repo.get_comment(999_999) is None
    first = await repo.add_reaction(command.id)
    again = await repo.add_reaction(command.id)
    assert first.id == again.id and first.content == "eyes"
    assert [(r.comment_id, r.content, r.user) for r in fake_github.reactions] == [
        (command.id, "eyes", "gwi-test[bot]")
    ]
    listed = await repo.list_comments(4)
    assert [c.id for c in listed] == [command.id]


async def test_collaborator_permission_reads_role_name(fake_github, github_app) -> None:
    fake_github.set_collaborator(GITHUB_REPO, "maya", "maintain")
    fake_github.set_collaborator(GITHUB_REPO, "tess", "triage")
    repo = _repo(github_app)
    maya = await repo.get_collaborator_permission("maya")
    assert (maya.role_name, maya.permission) == ("maintain", "write")
    tess = await repo.get_collaborator_permission("tess")
    assert (tess.role_name, tess.permission) == ("triage", "read")
    assert fake_github.calls_to("repos/get-collaborator-permission-level")[0].path.endswith(
        "/collaborators/maya/permission"
    )


async def test_pull_requests(fake_github, github_app) -> None:
    fake_github.add_repo("forker/widgets")
    fake_github.add_pull(
        GITHUB_REPO,
        number=9,
        head_sha="1" * 40,
        base_sha="2" * 40,
        head_ref="topic",
        draft=True,
        maintainer_can_modify=True,
        head_repo="forker/widgets",
    )
    fake_github.add_pull(GITHUB_REPO, number=10, base_ref="release", state="closed")
    repo = _repo(github_app)
    pull = await repo.get_pull_request(9)
    assert (pull.head.sha, pull.base.sha, pull.head.ref, pull.base.ref) == (
        "1" * 40,
        "2" * 40,
        "topic",
        "main",
    )
    assert pull.draft and pull.maintainer_can_modify and pull.from_fork
    assert pull.head.repo is not None and pull.head.repo.full_name == "forker/widgets"


async def test_get_file_and_repo(fake_github, github_app) -> None:
    fake_github.set_file(GITHUB_REPO, ".github/gwi.yml", "llm: none\n")
    fake_github.set_file(GITHUB_REPO, ".github/gwi.yml", "llm: other\n", ref="feature")
    repo = _repo(github_app)
    info = await repo.get_repo()
    assert info.default_branch == "main" and info.full_name == GITHUB_REPO
    assert await repo.get_file(".github/gwi.yml") == b"llm: none\n"
    assert await repo.get_file(".github/gwi.yml", ref="feature") == b"llm: other\n"
    assert await repo.get_file(".github/missing.yml") is None
    import pytest

    from bot.github.failures import GitHubError

    with pytest.raises(GitHubError, match="is a directory"):
        await repo.get_file(".github")


async def test_labels(fake_github, github_app) -> None:
    fake_github.add_pull(GITHUB_REPO, number=1)
    repo = _repo(github_app)
    labels = await repo.add_labels(1, ["gwi:running", "needs review/human"])
    assert [label.name for label in labels] == ["gwi:running", "needs review/human"]
    assert fake_github.pull(GITHUB_REPO, 1).labels == ["gwi:running", "needs review/human"]


async def test_check_runs_listed_for_a_commit(fake_github, github_app) -> None:
    repo = _repo(github_app)
    await repo.create_check_run("gwi", "c" * 40)
    await repo.create_check_run("other", "c" * 40)
    await repo.create_check_run("gwi", "d" * 40)
    runs = await repo.list_check_runs("c" * 40, check_name="gwi")
    assert [(r.name, r.head_sha) for r in runs] == [("gwi", "c" * 40)]


async def test_refs_read(fake_github, github_app) -> None:
    old = "1" * 40
    fake_github.set_ref(GITHUB_REPO, "heads/feature", old)
    repo = _repo(github_app)
    assert (await repo.get_ref("refs/heads/feature")).sha == old
    assert await repo.get_ref("heads/nope") is None


async def test_webhook_deliveries_listed_and_redelivered(fake_github, github_app) -> None:
    for n in range(5):
        fake_github.add_delivery("pull_request", "opened", status_code=500 if n == 2 else 200)
    failed = await github_app.list_webhook_deliveries(status="failure")
    assert [d.status_code for d in failed] == [500]
    everything = await github_app.list_webhook_deliveries(limit=4)
    assert len(everything) == 4
    await github_app.redeliver_webhook_delivery(failed[0].id)
    assert fake_github.redeliveries == [failed[0].id]


async def test_deliveries_follow_the_cursor(fake_github, github_app) -> None:
    for _ in range(130):
        fake_github.add_delivery("issue_comment", "created")
    listed = await github_app.list_webhook_deliveries(limit=130)
    assert len({d.id for d in listed}) == 130
    assert "cursor" in fake_github.calls_to("apps/list-webhook-deliveries")[1].query


async def test_connect_opens_and_closes_its_own_session(fake_github, github_settings) -> None:
    from bot.github.client import GitHubApp

    async with GitHubApp.connect(github_settings) as app:
        assert await app.bot_login() == "gwi-test[bot]"
        session = app.transport.gh._session
    assert session.closed


async def test_the_docstring_story(fake_github, github_app) -> None:
    fake_github.add_pull(GITHUB_REPO, number=7, head_sha="1" * 40)
    fake_github.fault("issues/create-comment", status=502)
    repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    await repo.upsert_marked_comment(7, "status", "queued")
    (comment,) = fake_github.comments_on(GITHUB_REPO, 7)
    assert comment.user == "gwi-test[bot]"
    assert [c.status for c in fake_github.calls_to("issues/create-comment")] == [502, 201]
