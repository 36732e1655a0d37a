"""The fake GitHub itself: it refuses what GitHub refuses, and answers in GitHub's shapes."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest

from bot.github.client import GitHubApp
from tests.conftest import GITHUB_APP_ID, GITHUB_INSTALLATION_ID, GITHUB_REPO
from tests.fake_github import FakeGitHub, all_operation_ids, operations

SHA = "e" * 40


async def _raw(
    fake: FakeGitHub,
    method: str,
    path: str,
    *,
    auth: str | None,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    sent = {"User-Agent": "gwi-tests", "Accept": "application/vnd.github+json", **(headers or {})}
    if auth is not None:
        sent["Authorization"] = auth
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, fake.base_url + path, json=json, headers=sent) as response,
    ):
        body = await response.json() if response.content_length else None
        return response.status, body


async def _token(github_app: GitHubApp) -> str:
    token = await github_app.auth.installation_token(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    return f"token {token.reveal()}"


def test_every_documented_operation_has_a_handler() -> None:
    ids = list(all_operation_ids())
    assert len(ids) == 36
    for op_id in ids:
        assert hasattr(FakeGitHub, "_op_" + op_id.replace("/", "_").replace("-", "_")), op_id


async def test_an_invalid_body_is_refused_with_422(fake_github, github_app) -> None:
    status, body = await _raw(
        fake_github,
        "POST",
        f"/repos/{GITHUB_REPO}/check-runs",
        auth=await _token(github_app),
        json={"name": "gwi", "head_sha": SHA, "status": "finished"},
    )
    assert status == 422
    assert "'finished' is not one of ['queued', 'in_progress', 'completed']" in body["message"]
    (violation,) = fake_github.pop_violations()
    assert "body breaks checks/create schema" in violation.detail
    assert fake_github.check_runs == {}


async def test_an_unknown_route_is_refused_with_404(fake_github, github_app) -> None:
    auth = await _token(github_app)
    assert (await _raw(fake_github, "GET", f"/repos/{GITHUB_REPO}/hooks", auth=auth))[0] == 404
    assert (await _raw(fake_github, "DELETE", f"/repos/{GITHUB_REPO}", auth=auth))[0] == 404
    first, second = fake_github.pop_violations()
    assert "no such operation" in first.kind + first.detail
    assert "method not allowed" in second.detail


@pytest.mark.parametrize(
    ("auth", "path", "status", "why"),
    [
        (None, f"/repos/{GITHUB_REPO}", 401, "no Authorization header"),
        ("token ghs_madeup", f"/repos/{GITHUB_REPO}", 401, "never minted"),
        ("jwt", f"/repos/{GITHUB_REPO}", 401, "needs an installation token"),
        ("installation", "/app/hook/deliveries", 401, "needs the App JWT"),
        ("Basic dXNlcjpwYXNz", f"/repos/{GITHUB_REPO}", 401, "unknown Authorization scheme"),
        ("installation", f"/repos/{GITHUB_REPO}/pulls?colour=red", 422, "no query parameter"),
        ("installation", f"/repos/{GITHUB_REPO}/pulls?state=merged", 422, "not in enum"),
        ("installation", f"/repos/{GITHUB_REPO}/pulls/abc", 404, "not an integer"),
    ],
)
async def test_requests_github_would_refuse_are_violations(
    fake_github, github_app, auth: str | None, path: str, status: int, why: str
) -> None:
    if auth == "jwt":
        auth = f"Bearer {github_app.auth.app_jwt()}"
    elif auth == "installation":
        auth = await _token(github_app)
    assert (await _raw(fake_github, "GET", path, auth=auth))[0] == status
    (violation,) = fake_github.pop_violations()
    assert why in violation.detail


async def test_a_missing_user_agent_is_refused(fake_github, github_app) -> None:
    async with (
        aiohttp.ClientSession(skip_auto_headers=["User-Agent"]) as session,
        session.get(
            f"{fake_github.base_url}/repos/{GITHUB_REPO}",
            headers={"Authorization": await _token(github_app)},
        ) as response,
    ):
        assert response.status == 403
    (violation,) = fake_github.pop_violations()
    assert violation.detail == "missing User-Agent"


async def test_a_token_for_repositories_outside_the_installation_is_refused(
    fake_github, github_app
) -> None:
    fake_github.add_repo("stranger/repo")
    status, _ = await _raw(
        fake_github,
        "POST",
        f"/app/installations/{GITHUB_INSTALLATION_ID}/access_tokens",
        auth=f"Bearer {github_app.auth.app_jwt()}",
        json={"repositories": ["repo"]},
    )
    assert status == 422
    assert "not in installation" in fake_github.pop_violations()[0].detail


async def test_the_fake_serves_behind_a_ghes_prefix(aiohttp_server, github_app_key) -> None:
    from bot.settings import GitHubSettings

    fake = FakeGitHub(app_id=GITHUB_APP_ID, private_key_pem=github_app_key, api_prefix="/api/v3")
    fake.add_repo(GITHUB_REPO, installation_id=GITHUB_INSTALLATION_ID)
    server = await aiohttp_server(fake.make_app())
    fake.base_url = str(server.make_url("/api/v3"))
    settings = GitHubSettings(
        app_id=GITHUB_APP_ID, private_key=github_app_key, api_url=fake.base_url
    )
    async with aiohttp.ClientSession() as session:
        repo = GitHubApp(settings, session).repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
        assert (await repo.get_repo()).full_name == GITHUB_REPO
    assert all(c.path.startswith("/api/v3/") for c in fake.calls)
    assert fake.violations == []


def _seed_everything(fake: FakeGitHub) -> dict[str, Any]:
    """State for one valid call of every operation."""
    fake.add_pull(GITHUB_REPO, number=1, head_sha=SHA, commits=[SHA])
    fake.pull(GITHUB_REPO, 1).files.append(
        {
            "sha": SHA,
            "filename": "a.py",
            "status": "modified",
            "additions": 1,
            "deletions": 0,
            "changes": 1,
            "blob_url": "https://x",
            "raw_url": "https://x",
            "contents_url": "https://x",
        }
    )
    fake.pull(GITHUB_REPO, 1).labels.append("gwi")
    comment = fake.add_comment(GITHUB_REPO, 1, "hello")
    fake.set_file(GITHUB_REPO, ".github/gwi.yml", "enabled: true\n")
    fake.set_ref(GITHUB_REPO, "heads/main", SHA)
    fake.commits[SHA] = {"message": "base", "tree": "", "parents": []}
    delivery = fake.add_delivery("pull_request", "opened", installation_id=GITHUB_INSTALLATION_ID)
    fake.compares[(GITHUB_REPO, "main", "feature")] = {"status": "ahead", "ahead_by": 1}
    return {"comment": comment.id, "delivery": delivery.id}


async def test_every_operation_answers_in_githubs_shape(fake_github, github_app) -> None:
    """One valid call of each of the 36 operations: 2xx, and the answer passes the loose
    response-schema check the fake applies to itself (drift would be a violation)."""
    ids = _seed_everything(fake_github)
    jwt = f"Bearer {github_app.auth.app_jwt()}"
    tok = await _token(github_app)
    r = f"/repos/{GITHUB_REPO}"
    blob = {"content": base64.b64encode(b"x\n").decode(), "encoding": "base64"}
    tree = {"tree": [{"path": "x", "mode": "100644", "type": "blob", "content": "x\n"}]}
    calls: list[tuple[str, str, str, Any]] = [
        ("GET", "/app", jwt, None),
        ("GET", "/app/hook/deliveries?per_page=10", jwt, None),
        ("GET", f"/app/hook/deliveries/{ids['delivery']}", jwt, None),
        ("POST", f"/app/hook/deliveries/{ids['delivery']}/attempts", jwt, None),
        ("POST", f"/app/installations/{GITHUB_INSTALLATION_ID}/access_tokens", jwt, {}),
        ("GET", "/rate_limit", tok, None),
        ("GET", r, tok, None),
        ("GET", f"{r}/installation", jwt, None),
        ("POST", f"{r}/check-runs", tok, {"name": "gwi", "head_sha": SHA}),
        ("GET", f"{r}/commits/{SHA}/check-runs", tok, None),
        ("GET", f"{r}/collaborators/octocat/permission", tok, None),
        ("GET", f"{r}/contents/.github/gwi.yml?ref=main", tok, None),
        ("GET", f"{r}/compare/main...feature", tok, None),
        ("POST", f"{r}/git/blobs", tok, blob),
        ("POST", f"{r}/git/trees", tok, tree),
        ("GET", f"{r}/git/commits/{SHA}", tok, None),
        ("GET", f"{r}/git/ref/heads/main", tok, None),
        ("POST", f"{r}/git/refs", tok, {"ref": "refs/heads/gwi/x", "sha": SHA}),
        ("GET", f"{r}/issues/1/comments", tok, None),
        ("POST", f"{r}/issues/1/comments", tok, {"body": "from the app"}),
        ("GET", f"{r}/issues/comments/{ids['comment']}", tok, None),
        ("POST", f"{r}/issues/comments/{ids['comment']}/reactions", tok, {"content": "eyes"}),
        ("POST", f"{r}/issues/1/labels", tok, {"labels": ["bug"]}),
        ("DELETE", f"{r}/issues/1/labels/gwi", tok, None),
        ("GET", f"{r}/pulls?state=all", tok, None),
        ("GET", f"{r}/pulls/1", tok, None),
        ("PATCH", f"{r}/pulls/1", tok, {"title": "renamed"}),
        ("GET", f"{r}/pulls/1/files", tok, None),
        ("GET", f"{r}/pulls/1/commits", tok, None),
        ("POST", f"{r}/pulls/1/reviews", tok, {"body": "looks fine", "event": "COMMENT"}),
    ]
    for method, path, auth, body in calls:
        status, _ = await _raw(fake_github, method, path, auth=auth, json=body)
        assert 200 <= status < 300, (method, path, status, fake_github.violations)
    # The rest need ids minted by the calls above.
    (run_id,) = fake_github.check_runs
    app_comment = fake_github.comments_on(GITHUB_REPO, 1)[-1].id
    tree_sha = next(iter(fake_github.trees))
    later: list[tuple[str, str, Any]] = [
        ("GET", f"{r}/check-runs/{run_id}", None),
        ("PATCH", f"{r}/check-runs/{run_id}", {"conclusion": "success"}),
        ("PATCH", f"{r}/issues/comments/{app_comment}", {"body": "edited"}),
        ("GET", f"{r}/git/trees/{tree_sha}", None),
        ("POST", f"{r}/git/commits", {"message": "m", "tree": tree_sha, "parents": [SHA]}),
    ]
    for method, path, body in later:
        status, answer = await _raw(fake_github, method, path, auth=tok, json=body)
        assert 200 <= status < 300, (method, path, status, fake_github.violations)
    new_commit = answer["sha"]
    status, _ = await _raw(
        fake_github, "PATCH", f"{r}/git/refs/heads/main", auth=tok, json={"sha": new_commit}
    )
    assert status == 200
    seen = {c.operation_id for c in fake_github.calls}
    assert seen == set(all_operation_ids())
    assert fake_github.violations == []


def test_operations_are_matched_most_specific_first() -> None:
    ops = operations()
    templates = [o.template for o in ops]
    assert templates.index("/repos/{owner}/{repo}/issues/comments/{comment_id}") < templates.index(
        "/repos/{owner}/{repo}/issues/{issue_number}/comments"
    )
