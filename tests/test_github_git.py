"""Git transport as the App: a bare cache per repository, the token only ever in a header."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.github.errors import GitError, PushRejected
from bot.github.git import RepoCache, _push_with_lease, auth_env, cache_path
from tests.conftest import commit_files, git

TOKEN = "ghs_" + "S3cr3tT0k3n" * 3
BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


def _remote(make_repo: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path, str]:
    """A work repository with a PR branch, and a bare 'GitHub' copy with refs/pull/1/head."""
    work = make_repo({"app.py": "print('v1')\n", "README.md": "hello\n"}, name="work")
    git(work, "checkout", "-q", "-b", "topic")
    commit_files(work, {"app.py": "print('topic')\n"}, "topic work")
    git(work, "checkout", "-q", "main")
    bare = tmp_path / "github" / "widgets.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    git(bare, "update-ref", "refs/pull/1/head", "refs/heads/topic")
    return work, bare, bare.as_uri()


def _files_containing(root: Path, needles: list[bytes]) -> list[Path]:
    hits = []
    for path in root.rglob("*"):
        if path.is_file() and any(n in path.read_bytes() for n in needles):
            hits.append(path)
    return hits


async def test_fetch_pull_into_the_bare_cache_then_only_what_is_new(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    work, bare, url = _remote(make_repo, tmp_path)
    data_dir = Path(os.environ["GWI_DATA_DIR"])
    cache = RepoCache(data_dir)

    first = await cache.fetch_pull("Octo-Org/Widgets", url, number=1, base_ref="main", token=TOKEN)
    assert first.git_dir == data_dir / "repos" / "octo-org" / "widgets.git"
    assert git(first.git_dir, "rev-parse", "--is-bare-repository").strip() == "true"
    assert first.head_sha == git(bare, "rev-parse", "refs/pull/1/head").strip()
    assert first.base_sha == git(bare, "rev-parse", "main").strip()
    assert first.objects_received >= 5
    assert git(first.git_dir, "for-each-ref", "--format=%(refname)").split() == [
        "refs/gwi/pull/1/base",
        "refs/gwi/pull/1/head",
    ]

    # The PR gets one more commit: the second fetch brings that commit, its tree and blob.
    git(work, "checkout", "-q", "topic")
    new_head = commit_files(work, {"app.py": "print('topic v2')\n"}, "more topic work")
    git(work, "push", "-q", str(bare), "topic")
    git(bare, "update-ref", "refs/pull/1/head", new_head)
    second = await cache.fetch_pull("octo-org/widgets", url, number=1, base_ref="main", token=TOKEN)
    assert second.head_sha == new_head
    assert second.objects_received == 3
    third = await cache.fetch_pull("octo-org/widgets", url, number=1, base_ref="main", token=TOKEN)
    assert third.objects_received == 0

    # The token is nowhere on disk: not in the cache's config, not in any file at all.
    config = (first.git_dir / "config").read_text()
    assert "extraheader" not in config.lower() and TOKEN not in config
    assert _files_containing(data_dir, [TOKEN.encode(), BASIC.encode()]) == []


async def test_the_token_travels_as_a_basic_auth_header_only(tmp_path: Path) -> None:
    """A real git client against a local HTTP server: the header is there, the URL is clean."""
    seen: list[tuple[str, str | None]] = []

    async def refuse(request: web.Request) -> web.Response:
        seen.append((str(request.rel_url), request.headers.get("Authorization")))
        return web.Response(status=403, text="no")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        cache = RepoCache(tmp_path / "data", timeout=30)
        url = f"http://127.0.0.1:{port}/octo-org/widgets.git"
        with pytest.raises(GitError) as info:
            await cache.fetch(
                "octo-org/widgets",
                url,
                {"refs/heads/main": "refs/gwi/main"},
                token=SecretStr(TOKEN),
            )
    finally:
        await runner.cleanup()
    assert seen, "git never reached the server"
    assert all(auth == f"Basic {BASIC}" for _, auth in seen)
    assert all(TOKEN not in path for path, _ in seen)
    assert TOKEN not in str(info.value) and BASIC not in str(info.value)
    assert _files_containing(tmp_path / "data", [TOKEN.encode(), BASIC.encode()]) == []


def test_auth_env_keeps_existing_git_config_entries_and_scopes_the_header() -> None:
    base = {
        "PATH": "/bin",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.x",
        "GIT_CONFIG_VALUE_0": "y",
        "GIT_ASKPASS": "/usr/bin/ask",
    }
    env = auth_env(TOKEN, "https://github.com/octo-org/widgets.git", base)
    assert env["GIT_CONFIG_COUNT"] == "3"
    assert env["GIT_CONFIG_KEY_0"] == "core.x"
    assert env["GIT_CONFIG_KEY_1"] == "credential.helper" and env["GIT_CONFIG_VALUE_1"] == ""
    assert env["GIT_CONFIG_KEY_2"] == "http.https://github.com/.extraHeader"
    assert env["GIT_CONFIG_VALUE_2"] == f"Authorization: Basic {BASIC}"
    assert env["GIT_TERMINAL_PROMPT"] == "0" and "GIT_ASKPASS" not in env
    assert base["GIT_CONFIG_COUNT"] == "1"  # the caller's mapping is untouched


def test_cache_paths_refuse_anything_but_owner_and_name(tmp_path: Path) -> None:
    assert cache_path(tmp_path, "A/B.c") == tmp_path / "repos" / "a" / "b.c.git"
    for bad in ("../x", "a/..", "a/b/c", "a", "-a/b", "a/b c", "/etc"):
        with pytest.raises(ValueError):
            cache_path(tmp_path, bad)


async def test_fetch_refuses_dangerous_urls_and_refspecs(tmp_path: Path) -> None:
    cache = RepoCache(tmp_path)
    with pytest.raises(ValueError, match="unsupported clone URL"):
        await cache.fetch("a/b", "ext::sh -c touch% /tmp/pwned", {"x": "refs/gwi/x"}, token=None)
    with pytest.raises(ValueError, match="bad refspec"):
        await cache.fetch("a/b", "https://github.com/a/b.git", {"x": "refs/heads/x"}, token=None)


async def test_push_with_lease_moves_the_branch_only_from_the_expected_commit(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    _work, bare, url = _remote(make_repo, tmp_path)
    cache = RepoCache(tmp_path / "data")
    pulled = await cache.fetch_pull("octo-org/widgets", url, number=1, base_ref="main", token=TOKEN)
    # A commit made in the cache on top of the PR head, as the approval gate would push.
    tree = git(pulled.git_dir, "rev-parse", f"{pulled.head_sha}^{{tree}}").strip()
    commit = git(pulled.git_dir, "commit-tree", tree, "-p", pulled.head_sha, "-m", "gwi").strip()

    stale = pulled.base_sha  # not where topic points: the lease must refuse
    with pytest.raises(PushRejected, match="refused"):
        await _push_with_lease(
            cache,
            "octo-org/widgets",
            url,
            commit=commit,
            branch="topic",
            expected_sha=stale,
            token=TOKEN,
        )
    assert git(bare, "rev-parse", "topic").strip() == pulled.head_sha

    await _push_with_lease(
        cache,
        "octo-org/widgets",
        url,
        commit=commit,
        branch="topic",
        expected_sha=pulled.head_sha,
        token=TOKEN,
    )
    assert git(bare, "rev-parse", "topic").strip() == commit

    await _push_with_lease(
        cache,
        "octo-org/widgets",
        url,
        commit=commit,
        branch="gwi/new",
        expected_sha=None,
        token=TOKEN,
    )
    assert git(bare, "rev-parse", "gwi/new").strip() == commit
    other = git(pulled.git_dir, "commit-tree", tree, "-p", commit, "-m", "gwi again").strip()
    with pytest.raises(PushRejected):  # "must not exist yet" no longer holds
        await _push_with_lease(
            cache,
            "octo-org/widgets",
            url,
            commit=other,
            branch="gwi/new",
            expected_sha=None,
            token=TOKEN,
        )
    assert git(bare, "rev-parse", "gwi/new").strip() == commit
    assert _files_containing(tmp_path / "data", [TOKEN.encode(), BASIC.encode()]) == []


async def test_push_with_lease_validates_its_inputs(tmp_path: Path) -> None:
    cache = RepoCache(tmp_path)
    sha = "a" * 40
    for kwargs in (
        {"commit": "HEAD"},
        {"branch": "-f"},
        {"branch": "refs/heads/x"},
        {"expected_sha": "main"},
    ):
        args = {"commit": sha, "branch": "x", "expected_sha": sha, **kwargs}
        with pytest.raises(ValueError):
            await _push_with_lease(cache, "a/b", "https://github.com/a/b.git", token=None, **args)
