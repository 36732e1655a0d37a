"""App JWTs and repository-scoped installation tokens, against the fake GitHub."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from bot.github.client import GitHubApp
from bot.github.failures import GitHubError
from tests.conftest import GITHUB_APP_ID, GITHUB_INSTALLATION_ID, GITHUB_REPO


async def test_app_jwt_is_accepted_and_well_formed(fake_github, github_app) -> None:
    info = await github_app.get_app()
    assert info["slug"] == fake_github.app_slug
    assert await github_app.bot_login() == "gwi-test[bot]"
    (call,) = fake_github.calls_to("apps/get-authenticated")
    scheme, token = call.headers["authorization"].split(" ", 1)
    assert scheme.lower() == "bearer"
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == GITHUB_APP_ID
    assert claims["exp"] - claims["iat"] <= 11 * 60


async def test_token_is_scoped_to_one_repository(fake_github, github_app) -> None:
    fake_github.add_repo("octo-org/other", installation_id=GITHUB_INSTALLATION_ID)
    repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    await repo.get_repo()
    (mint,) = fake_github.calls_to("apps/create-installation-access-token")
    assert mint.json == {"repositories": ["widgets"]}
    (token,) = fake_github.tokens
    assert token.repositories == {GITHUB_REPO}
    # The same token on another repository of the installation is refused by GitHub.
    other = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    other._base = "/repos/octo-org/other"
    with pytest.raises(GitHubError) as info:
        await other.get_repo()
    assert info.value.status == 404
    (violation,) = fake_github.pop_violations()
    assert "scoped to" in violation.detail


async def test_one_mint_serves_many_calls_and_concurrent_callers(fake_github, github_app) -> None:
    fake_github.add_pull(GITHUB_REPO, number=1)
    repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    await asyncio.gather(*(repo.get_pull_request(1) for _ in range(8)))
    await repo.get_repo()
    assert len(fake_github.calls_to("apps/create-installation-access-token")) == 1
    assert len(fake_github.calls_to("pulls/get")) == 8


async def test_each_repository_and_permission_set_gets_its_own_token(
    fake_github, github_app
) -> None:
    fake_github.add_repo("octo-org/other", installation_id=GITHUB_INSTALLATION_ID)
    auth = github_app.auth
    a = await auth.installation_token(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    b = await auth.installation_token(GITHUB_INSTALLATION_ID, "octo-org/other")
    c = await auth.installation_token(GITHUB_INSTALLATION_ID, GITHUB_REPO, {"checks": "write"})
    again = await auth.installation_token(GITHUB_INSTALLATION_ID, GITHUB_REPO.upper())
    assert len({a.reveal(), b.reveal(), c.reveal()}) == 3
    assert again.reveal() == a.reveal()
    assert c.permissions == (("checks", "write"), ("metadata", "read"))
    mints = fake_github.calls_to("apps/create-installation-access-token")
    assert mints[2].json == {"repositories": ["widgets"], "permissions": {"checks": "write"}}


async def test_a_narrow_token_cannot_do_more(fake_github, github_app) -> None:
    fake_github.add_pull(GITHUB_REPO, number=1)
    checks_only = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO, {"checks": "write"})
    await checks_only.create_check_run("gwi", "c" * 40)
    with pytest.raises(GitHubError) as info:
        await checks_only.create_comment(1, "hello")
    assert info.value.status == 403
    assert "not accessible" in str(info.value)
    (violation,) = fake_github.pop_violations()
    assert "issues:write or pull_requests:write" in violation.detail


async def test_token_is_refreshed_a_margin_before_expiry(
    fake_github, github_settings, github_sleeps
) -> None:
    import aiohttp

    moment = [datetime.now(UTC)]
    async with aiohttp.ClientSession() as session:
        app = GitHubApp(github_settings, session, auth_now=lambda: moment[0])
        first = await app.auth.installation_token(GITHUB_INSTALLATION_ID, GITHUB_REPO)
        moment[0] += timedelta(minutes=50)  # 10 minutes left: still fresh
        assert (await app.auth.installation_token(GITHUB_INSTALLATION_ID, GITHUB_REPO)) is first
        moment[0] += timedelta(minutes=6)  # 4 minutes left: inside the 5-minute margin
        second = await app.auth.installation_token(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    assert second.reveal() != first.reveal()
    assert len(fake_github.tokens) == 2


async def test_a_revoked_token_is_reminted_once(fake_github, github_app) -> None:
    fake_github.add_pull(GITHUB_REPO, number=3)
    repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    await repo.get_pull_request(3)
    fake_github.expire_tokens()
    pull = await repo.get_pull_request(3)
    assert pull.number == 3
    assert len(fake_github.tokens) == 2
    assert fake_github.auth_failures == [f"GET /repos/{GITHUB_REPO}/pulls/3"]


async def test_a_second_401_is_not_retried_forever(fake_github, github_app) -> None:
    fake_github.add_pull(GITHUB_REPO, number=3)
    fake_github.token_lifetime = timedelta(seconds=-1)  # every token is born expired
    repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    with pytest.raises(GitHubError, match="refused the credentials") as info:
        await repo.get_pull_request(3)
    assert info.value.status == 401
    assert len(fake_github.auth_failures) == 2


async def test_token_repr_hides_the_secret(github_app) -> None:
    token = await github_app.auth.installation_token(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    for shown in (repr(token), str(token), f"{token}", repr([token])):
        assert token.reveal() not in shown
        assert "**********" in shown
    assert token.reveal().startswith("ghs_")


async def test_get_repo_installation(fake_github, github_app) -> None:
    assert await github_app.get_repo_installation(GITHUB_REPO) == GITHUB_INSTALLATION_ID
    fake_github.add_repo("someone/elsewhere")  # the App is not installed there
    with pytest.raises(GitHubError) as info:
        await github_app.get_repo_installation("someone/elsewhere")
    assert info.value.status == 404


async def test_the_fake_refuses_a_jwt_signed_by_another_key(fake_github, github_settings) -> None:
    import aiohttp
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = other.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    forged = github_settings.model_copy(update={"private_key": github_settings.private_key})
    forged = type(github_settings)(
        app_id=forged.app_id, private_key=pem, api_url=github_settings.api_url
    )
    async with aiohttp.ClientSession() as session:
        with pytest.raises(GitHubError) as info:
            await GitHubApp(forged, session).get_app()
    assert info.value.status == 401
    (violation,) = fake_github.pop_violations()
    assert "bad JWT" in violation.detail


async def test_the_app_jwt_is_reused_for_a_few_minutes(github_app) -> None:
    first = github_app.auth.app_jwt()
    assert github_app.auth.app_jwt() == first
    claims = jwt.decode(first, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 9 * 60


async def test_no_secret_reaches_the_logs(fake_github, github_app, caplog) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    fake_github.add_pull(GITHUB_REPO, number=1)
    fake_github.fault("pulls/get", status=502)
    repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
    await repo.get_pull_request(1)
    fake_github.expire_tokens()
    await repo.get_pull_request(1)
    assert "minted installation token" in caplog.text and "retrying" in caplog.text
    for token in fake_github.tokens:
        assert token.token not in caplog.text
    assert github_app.auth.app_jwt() not in caplog.text
