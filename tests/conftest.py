"""Shared test fixtures: real git repositories in temporary folders, and ../shared when present."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import GIT_ENV, commit_files, git

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED = PROJECT_ROOT.parent / "shared"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Tests never read the developer's git configuration, and commits are reproducible.


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Every test gets its own data dir and signing key, and a neutral git environment."""
    home = tmp_path_factory.mktemp("gwi-home")
    monkeypatch.setenv("GWI_DATA_DIR", str(home / "data"))
    monkeypatch.setenv("GWI_SIGNING_KEY", str(home / "signing-key.pem"))
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    for key in ("GWI_LLM_PROVIDER", "ANTHROPIC_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def store(tmp_path: Path) -> Any:
    """A run store in the test's own folder, with its own signing key."""
    from bot.runs.folder_store import FolderRunStore

    return FolderRunStore(tmp_path / "data", tmp_path / "key.pem")


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Create a real repository on branch ``main`` with the given files committed."""

    def _make(files: dict[str, str | bytes | None] | None = None, name: str = "repo") -> Path:
        repo = tmp_path / name
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        commit_files(repo, files or {"README.md": "hello\n"}, "initial")
        return repo

    return _make


def _shared_or_skip(sub: str) -> Path:
    path = SHARED / sub
    if not path.exists():
        pytest.skip(f"../shared/{sub} is not present beside the checkout")
    return path


@pytest.fixture
def shared_merge_scenarios() -> Path:
    return _shared_or_skip("merge-scenarios")


@pytest.fixture
def shared_github() -> Path:
    return _shared_or_skip("github")


# -- GitHub: the App's key, the shared fake GitHub, and a client wired to it ---------------

GITHUB_APP_ID = "4242"
GITHUB_INSTALLATION_ID = 77
GITHUB_REPO = "octo-org/widgets"


@functools.cache
def app_key_pem() -> str:
    """A fresh RSA key in the PKCS#1 PEM form GitHub hands out for an App (one per session)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def app_env() -> dict[str, str]:
    """The App credentials `gwi serve` needs, for tests that start it as a process."""
    return {"GITHUB_APP_ID": GITHUB_APP_ID, "GITHUB_PRIVATE_KEY": app_key_pem()}


@pytest.fixture(scope="session")
def github_app_key() -> str:
    return app_key_pem()


@pytest.fixture
async def fake_github(aiohttp_server: Any, github_app_key: str) -> AsyncIterator[Any]:
    """The one fake GitHub (tests/fake_github.py), seeded with installation
    ``GITHUB_INSTALLATION_ID`` on repository ``GITHUB_REPO``.

    Teardown fails the test if any request broke GitHub's API description or auth rules;
    a test that provokes violations on purpose takes them with ``pop_violations()``.
    """
    from tests.fake_github import FakeGitHub

    fake = FakeGitHub(app_id=GITHUB_APP_ID, private_key_pem=github_app_key)
    fake.add_installation(GITHUB_INSTALLATION_ID, GITHUB_REPO.split("/")[0])
    fake.add_repo(GITHUB_REPO, installation_id=GITHUB_INSTALLATION_ID)
    server = await aiohttp_server(fake.make_app())
    fake.base_url = str(server.make_url("")).rstrip("/")
    yield fake
    fake.close()
    if fake.violations:
        listed = "\n  ".join(str(v) for v in fake.violations)
        pytest.fail(f"the fake GitHub saw requests GitHub would refuse:\n  {listed}")


@pytest.fixture
def github_settings(fake_github: Any, github_app_key: str) -> Any:
    from bot.settings import GitHubSettings

    return GitHubSettings(
        app_id=GITHUB_APP_ID,
        private_key=github_app_key,
        api_url=fake_github.base_url,
    )


@pytest.fixture
def github_sleeps() -> list[float]:
    """Every wait the GitHub client asked for, in order (the waits themselves are skipped)."""
    return []


@pytest.fixture
async def github_app(github_settings: Any, github_sleeps: list[float]) -> AsyncIterator[Any]:
    """A ``GitHubApp`` talking to ``fake_github``, with short timeouts and instant retries."""
    import asyncio

    import aiohttp

    from bot.github.client import GitHubApp
    from bot.github.transport import HttpRetry

    async def sleep(seconds: float) -> None:
        github_sleeps.append(seconds)
        await asyncio.sleep(0)

    policy = HttpRetry(
        max_attempts=4,
        base_delay=0.5,
        max_delay=4.0,
        max_elapsed=60.0,
        max_rate_limit_wait=30.0,
        request_timeout=2.0,
    )
    async with aiohttp.ClientSession() as session:
        yield GitHubApp(github_settings, session, policy=policy, sleep=sleep)


# -- LLM: the one fake LLM server, and settings pointed at it ------------------------------


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's LLM configuration, nor the SDKs' own variables."""
    for key in (
        "GWI_LLM_MODEL",
        "GWI_LLM_BASE_URL",
        "GWI_LLM_TIMEOUT",
        "GWI_LLM_MAX_RETRIES",
        "GWI_LLM_MAX_OUTPUT_TOKENS",
        "GWI_LLM_JSON_MODE",
        "LLM",
        "ANTHROPIC_AUTH_TOKEN",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_CUSTOM_HEADERS",
        "OPENAI_BASE_URL",
        "OPENAI_CUSTOM_HEADERS",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
    ):
        monkeypatch.delenv(key, raising=False)


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The one fake LLM server (tests/fake_llm.py), both providers on one local port.

    Teardown fails the test if any request broke a provider's protocol; a test that provokes
    violations on purpose takes them with ``pop_violations()``.
    """
    from tests.fake_llm import FakeLlm

    # An HTTP proxy in the environment must not intercept calls to the fake.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    fake = FakeLlm().start()
    yield fake
    fake.close()
    if fake.violations:
        listed = "\n  ".join(fake.violations)
        pytest.fail(f"the fake LLM saw requests the real API would refuse:\n  {listed}")


@pytest.fixture
def llm_settings_for(fake_llm: Any) -> Callable[..., Any]:
    """``llm_settings_for(provider, **overrides)``: `LlmSettings` aimed at ``fake_llm``, with the
    fake's key and model, a 2-second timeout and one retry."""
    from bot.schemas.run import Provider
    from bot.settings import LlmSettings
    from tests.fake_llm import FAKE_LLM_KEY, FAKE_LLM_MODEL

    def make(provider: str | Provider, **overrides: Any) -> LlmSettings:
        chosen = Provider(provider)
        values: dict[str, Any] = {
            "provider": chosen,
            "model": FAKE_LLM_MODEL,
            "base_url": (
                fake_llm.anthropic_url if chosen is Provider.ANTHROPIC else fake_llm.openai_url
            ),
            "api_key": FAKE_LLM_KEY,
            "timeout": 2.0,
            "max_retries": 1,
        }
        values.update(overrides)
        return LlmSettings.model_validate(values)

    return make


# -- webhooks ----------------------------------------------------------------------------

WEBHOOK_SECRET = "test-webhook-secret"
# The web process's settings: tests start from none of the developer's.
SERVE_ENV = (
    "GITHUB_WEBHOOK_SECRET",
    "GITHUB_WEBHOOK_SECRET_OLD",
    "PORT",
    "GWI_HOST",
    "GWI_WORKERS",
    "GWI_LOG_LEVEL",
    "GWI_MAX_BODY_BYTES",
    "GWI_LEASE_SECONDS",
    # the run pages' sign-in (bot/settings/pages_group.py)
    "GITHUB_CLIENT_ID",
    "GITHUB_CLIENT_SECRET",
    "GWI_PUBLIC_URL",
    "GWI_SESSION_SECRET",
    "GWI_COOKIE_SECURE",
    "GWI_ACCESS_CACHE_SECONDS",
    "GITHUB_WEB_URL",
)


@pytest.fixture(autouse=True)
def _isolated_serve_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in SERVE_ENV:
        monkeypatch.delenv(key, raising=False)


def sign(body: bytes, secret: str = WEBHOOK_SECRET) -> str:
    """The ``X-Hub-Signature-256`` value GitHub would send for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(
    body: bytes, event: str, delivery_id: str, secret: str = WEBHOOK_SECRET
) -> dict[str, str]:
    """The headers of a webhook delivery as GitHub sends them, signed with ``secret``."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/test",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": sign(body, secret),
    }


@pytest.fixture(scope="session")
def webhook_examples() -> list[tuple[str, dict[str, Any]]]:
    """Every (event name, payload) in the copied @octokit/webhooks-examples file."""
    events = json.loads((FIXTURES / "github" / "webhook-examples.json").read_bytes())
    return [(event["name"], example) for event in events for example in event["examples"]]


# -- the GitHub App end to end (tests/github_harness.py) --------------------------------------

@pytest.fixture
async def make_bot(
    aiohttp_client: Any, fake_github: Any, github_settings: Any, tmp_path: Path
) -> Callable[..., Any]:
    """``await make_bot(files, llm=None, job_retry=None, workers=2, app_options=None,
    **settings)``: the App serving on a test client, a bare remote holding ``files`` on main,
    and the fake GitHub pointed at it. ``job_retry`` (a `HttpRetry`) lets a test retry
    failed jobs without waiting seconds; ``workers`` job workers serve tests that run many
    pull requests at once; ``app_options`` go to `create_app` as they are (``github_options``:
    the GitHub client's retry policy and sleep; ``reconcile_interval``); ``port`` serves the
    App on a port chosen beforehand (a public URL that names it)."""
    from bot.queue.workers import WorkerConfig
    from bot.runs.store_factory import open_run_store
    from bot.server.app import create_app
    from bot.settings import load_settings
    from tests.github_harness import Bot, Remote

    async def make(files: dict[str, str], llm: Any = None, job_retry: Any = None,
                   workers: int = 2, app_options: dict[str, Any] | None = None,
                   port: int | None = None, **overrides: Any) -> Any:
        remote = Remote.create(tmp_path / "github", files)
        fake_github.repo(GITHUB_REPO).clone_url = remote.bare.as_uri()
        values: dict[str, Any] = {"GITHUB_WEBHOOK_SECRET": WEBHOOK_SECRET,
                                  "GWI_DATA_DIR": str(tmp_path / "data"), **overrides}
        if llm is not None:
            values["llm"] = llm
        settings = load_settings(values)
        retry = {"job_retry": job_retry} if job_retry is not None else {}
        settings = settings.model_copy(update={"github": github_settings})
        app = create_app(settings, worker_config=WorkerConfig(
            delivery_workers=2, job_workers=workers, lease_seconds=30, poll_interval=0.05),
            **retry, **(app_options or {}))
        client = await aiohttp_client(app, server_kwargs={"port": port} if port else None)
        return Bot(client=client, fake=fake_github, remote=remote,
                   runs=open_run_store(settings))

    return make


# A real PostgreSQL server for the queue's contract tests (started only by the tests that ask).
from tests.pg_server import pg_empty_url, pg_server, pg_url  # noqa: F401
from tests.run_store_backends import runs  # noqa: F401
