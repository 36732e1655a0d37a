"""Git transport as the App: a bare cache per repository, the token only ever in a header."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from bot.errors import GitError
from bot.github.failures import PushRejected, UnapprovedPush
from bot.github.handle_push import _push_with_lease
from bot.github.repo_cache import RepoCache, auth_env, cache_path
from bot.runs.signing import Signer
from bot.schemas.approval import ApprovalRecord
from tests import builders as b
from tests.support import commit_files, git

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


def _approval(signer: Signer, head: str, base: str) -> ApprovalRecord:
    return ApprovalRecord.model_validate(b.approval(signer, head_sha=head, base_sha=base))


async def _fetched(make_repo: Callable[..., Path], tmp_path: Path) -> tuple[
        Path, str, RepoCache, str, str, str, str]:
    """The remote, its URL, a cache that fetched PR 1, its head and base, the tree of the
    head, and the merge commit the approval gate would push (head, then base, as parents)."""
    _work, bare, url = _remote(make_repo, tmp_path)
    cache = RepoCache(tmp_path / "data")
    pulled = await cache.fetch_pull("octo-org/widgets", url, number=1, base_ref="main", token=TOKEN)
    head, base = pulled.head_sha, pulled.base_sha
    tree = git(pulled.git_dir, "rev-parse", f"{head}^{{tree}}").strip()
    merge = git(pulled.git_dir, "commit-tree", tree, "-p", head, "-p", base, "-m", "gwi").strip()
    return bare, url, cache, head, base, tree, merge


async def test_push_with_lease_moves_the_branch_only_from_the_expected_commit(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    bare, url, cache, head, base, _tree, commit = await _fetched(make_repo, tmp_path)
    signer = Signer(Ed25519PrivateKey.generate())
    push = {"commit": commit, "branch": "topic", "token": TOKEN,
            "approval": _approval(signer, head, base), "trusted_key": signer.public_key_hex}

    git(bare, "update-ref", "refs/heads/topic", base)  # someone pushed first: the lease refuses
    with pytest.raises(PushRejected, match="refused"):
        await _push_with_lease(cache, "octo-org/widgets", url, expected_sha=head, **push)
    assert git(bare, "rev-parse", "topic").strip() == base

    git(bare, "update-ref", "refs/heads/topic", head)
    await _push_with_lease(cache, "octo-org/widgets", url, expected_sha=head, **push)
    assert git(bare, "rev-parse", "topic").strip() == commit
    await _push_with_lease(cache, "octo-org/widgets", url, expected_sha=head, **push)  # no-op
    assert git(bare, "rev-parse", "topic").strip() == commit
    assert _files_containing(tmp_path / "data", [TOKEN.encode(), BASIC.encode()]) == []


async def test_the_push_primitive_refuses_what_its_approval_does_not_cover(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    bare, url, cache, head, base, tree, merge = await _fetched(make_repo, tmp_path)
    git_dir = cache_path(tmp_path / "data", "octo-org/widgets")
    other = git(git_dir, "commit-tree", tree, "-p", head, "-m", "not a merge").strip()
    signer, stranger = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    cases = [
        ({"commit": other, "approval": _approval(signer, head, base)}, "not the merge"),
        ({"commit": merge, "approval": _approval(stranger, head, base)}, "not signed"),
        ({"commit": merge, "approval": _approval(signer, base, head)}, "another head"),
    ]
    for options, message in cases:
        with pytest.raises(UnapprovedPush, match=message):
            await _push_with_lease(cache, "octo-org/widgets", url, branch="topic",
                                   expected_sha=head, token=TOKEN,
                                   trusted_key=signer.public_key_hex, **options)
    assert git(bare, "rev-parse", "topic").strip() == head


async def test_push_with_lease_validates_its_inputs(tmp_path: Path) -> None:
    cache = RepoCache(tmp_path)
    sha = "a" * 40
    signer = Signer(Ed25519PrivateKey.generate())
    approval = _approval(signer, sha, "b" * 40)
    for kwargs in (
        {"commit": "HEAD"},
        {"branch": "-f"},
        {"branch": "refs/heads/x"},
        {"expected_sha": "main"},
    ):
        args = {"commit": sha, "branch": "x", "expected_sha": sha, **kwargs}
        with pytest.raises(ValueError):
            await _push_with_lease(cache, "a/b", "https://github.com/a/b.git", token=None,
                                   approval=approval, trusted_key=signer.public_key_hex, **args)


