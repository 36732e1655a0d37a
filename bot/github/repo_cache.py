"""Git over HTTPS as the App: a bare cache per repository, fetched with the installation token."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import logging
import os
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import SecretStr

from bot.errors import GitError
from bot.github.auth import InstallationToken

log = logging.getLogger(__name__)

_OWNER = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_NAME = re.compile(r"[A-Za-z0-9._-]+")
SHA_RE = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_TOTAL = re.compile(r"Total (\d+)")
# Where gwi keeps what it fetched: never refs/heads, so nothing looks like a local branch.
PRIVATE_REF_PREFIX = "refs/gwi/"

Token = InstallationToken | SecretStr | str


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a fetch left in the cache: the bare repository, each private ref's commit, and
    how many objects came over the wire (0 when everything was already there)."""

    git_dir: Path
    refs: Mapping[str, str]
    objects_received: int


@dataclass(frozen=True, slots=True)
class PullRefs:
    """A pull request's two sides, fetched: ``head_sha`` is what the PR's head ref pointed
    at when fetched, which may be newer than the event that asked for it."""

    git_dir: Path
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    objects_received: int


def _secret(token: Token | None) -> str | None:
    if token is None:
        return None
    if isinstance(token, InstallationToken):
        return token.reveal()
    if isinstance(token, SecretStr):
        return token.get_secret_value()
    return token


def cache_path(data_dir: Path, repository: str) -> Path:
    """``<data dir>/repos/<owner>/<name>.git`` (lower-cased: GitHub names ignore case)."""
    owner, sep, name = repository.partition("/")
    if not sep or not _OWNER.fullmatch(owner) or not _NAME.fullmatch(name) or name in {".", ".."}:
        raise ValueError(f"not a GitHub repository name: {repository!r}")
    return data_dir / "repos" / owner.lower() / f"{name.lower()}.git"


def check_url(url: str) -> None:
    # Only transports gwi means to use: an "ext::" or "-u..." URL would run commands.
    if urlsplit(url).scheme not in {"https", "http", "file"}:
        raise ValueError(f"unsupported clone URL (https, http or file only): {url!r}")


def auth_env(token: Token | None, url: str, base: Mapping[str, str]) -> dict[str, str]:
    """The environment for one git command that authenticates to ``url`` with ``token``.

    The token travels as an ``Authorization`` header set through ``GIT_CONFIG_*``
    variables: never in argv (visible in ``ps``), the remote URL (stored in config and
    FETCH_HEAD, echoed in errors) or a file. The header is scoped to the URL's origin so it
    cannot follow a redirect elsewhere, and prompts and credential helpers are off so a
    refusal fails at once instead of waiting for a password or storing one.
    """
    env = {k: v for k, v in base.items() if k not in {"GIT_ASKPASS", "SSH_ASKPASS"}}
    env["GIT_TERMINAL_PROMPT"] = "0"
    entries: list[tuple[str, str]] = [("credential.helper", "")]
    secret = _secret(token)
    if secret is not None:
        parts = urlsplit(url)
        basic = base64.b64encode(f"x-access-token:{secret}".encode()).decode()
        scope = f"{parts.scheme}://{parts.netloc}/" if parts.scheme in {"http", "https"} else ""
        key = f"http.{scope}.extraHeader" if scope else "http.extraHeader"
        entries.append((key, f"Authorization: Basic {basic}"))
    try:
        count = int(env.get("GIT_CONFIG_COUNT", "0"))
    except ValueError:
        count = 0
    for offset, (key, value) in enumerate(entries):
        env[f"GIT_CONFIG_KEY_{count + offset}"] = key
        env[f"GIT_CONFIG_VALUE_{count + offset}"] = value
    env["GIT_CONFIG_COUNT"] = str(count + len(entries))
    return env


class RepoCache:
    """Bare repositories under ``<data dir>/repos``, one per GitHub repository.

    Fetches into a repository take its lock (an asyncio lock within the process and a
    ``flock`` across worker processes), since two git processes updating the same refs
    would fail on each other's ``.lock`` files.
    """

    def __init__(self, data_dir: Path, *, git: str = "git", timeout: float = 600.0) -> None:
        self.data_dir = data_dir
        self._git = git
        self._timeout = timeout
        self._locks: dict[Path, asyncio.Lock] = {}
        self._held: dict[Path, int] = {}  # git dir -> the descriptor holding its flock

    def path(self, repository: str) -> Path:
        return cache_path(self.data_dir, repository)

    @contextlib.asynccontextmanager
    async def locked(self, repository: str) -> AsyncIterator[Path]:
        """Hold the repository's lock; yields its bare repository (created when missing).

        Every git command run under the lock inherits the locked descriptor, so the lock
        lasts as long as the last of them even if this process dies first. Whoever holds it
        is therefore the only one using the repository, and any git lock file found there
        was left by a git killed mid-write (a crash of the host): it is removed, since git
        would otherwise refuse every later fetch of those refs.
        """
        git_dir = self.path(repository)
        lock = self._locks.setdefault(git_dir, asyncio.Lock())
        async with lock:
            git_dir.parent.mkdir(parents=True, exist_ok=True)
            lock_file = git_dir.parent / f".{git_dir.name}.lock"
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        await asyncio.sleep(0.05)  # polled, so a cancelled wait holds nothing
                self._held[git_dir] = fd
                if not (git_dir / "HEAD").exists():
                    await self.run_git(["init", "--bare", "--quiet", str(git_dir)], git_dir=None)
                else:
                    _remove_stale_git_locks(git_dir)
                yield git_dir
            finally:
                self._held.pop(git_dir, None)
                os.close(fd)  # closing the descriptor releases the flock (once git exits too)

    async def fetch(
        self,
        repository: str,
        clone_url: str,
        refspecs: Mapping[str, str],
        *,
        token: Token | None,
    ) -> FetchResult:
        """Fetch ``{remote ref or sha: private ref}`` from ``clone_url`` into the cache.

        Private refs must live under ``refs/gwi/``; they are force-updated (a PR head may be
        force-pushed). Only objects the cache lacks are transferred.
        """
        check_url(clone_url)
        if not refspecs:
            raise ValueError("fetch needs at least one refspec")
        for source, target in refspecs.items():
            if not target.startswith(PRIVATE_REF_PREFIX) or source.startswith("-"):
                raise ValueError(f"bad refspec {source!r} -> {target!r}")
        specs = [f"+{source}:{target}" for source, target in refspecs.items()]
        async with self.locked(repository) as git_dir:
            _, err, _ = await self.run_git(
                [
                    "-c",
                    "gc.autoDetach=false",
                    "-c",
                    "maintenance.autoDetach=false",
                    "fetch",
                    "--progress",
                    "--no-tags",
                    "--no-write-fetch-head",
                    "--",
                    clone_url,
                    *specs,
                ],
                git_dir=git_dir,
                token=token,
                url=clone_url,
            )
            refs = {target: await self._rev_parse(git_dir, target) for target in refspecs.values()}
        total = _TOTAL.search(err)
        received = int(total.group(1)) if total else 0
        log.info("fetched %s refs=%s objects=%d", repository, ",".join(refspecs.values()), received)
        return FetchResult(git_dir=git_dir, refs=refs, objects_received=received)

    async def fetch_pull(
        self,
        repository: str,
        clone_url: str,
        *,
        number: int,
        base_ref: str,
        token: Token | None,
    ) -> PullRefs:
        """Fetch a pull request's head (``refs/pull/<n>/head``, which GitHub keeps on the
        base repository even for forks) and its base branch into ``refs/gwi/pull/<n>/``."""
        if base_ref.startswith(("refs/", "-")):
            raise ValueError(f"base_ref is a branch name, not {base_ref!r}")
        head_local = f"{PRIVATE_REF_PREFIX}pull/{int(number)}/head"
        base_local = f"{PRIVATE_REF_PREFIX}pull/{int(number)}/base"
        result = await self.fetch(
            repository,
            clone_url,
            {f"refs/pull/{int(number)}/head": head_local, f"refs/heads/{base_ref}": base_local},
            token=token,
        )
        return PullRefs(
            git_dir=result.git_dir,
            head_ref=head_local,
            head_sha=result.refs[head_local],
            base_ref=base_local,
            base_sha=result.refs[base_local],
            objects_received=result.objects_received,
        )

    async def ensure_commits(self, repository: str, clone_url: str, shas: list[str], *,
                             token: Token | None) -> Path:
        """This host's cache of ``repository`` holding every commit of ``shas`` (fetched by id
        when missing: a run made on another host is continued here); its git dir."""
        for sha in shas:
            if not SHA_RE.fullmatch(sha):
                raise ValueError(f"not a full commit id: {sha!r}")
        async with self.locked(repository) as git_dir:
            missing = []
            for sha in shas:
                _, _, code = await self.run_git(["cat-file", "-e", f"{sha}^{{commit}}"], git_dir,
                                                check=False)
                if code != 0:
                    missing.append(sha)
        if missing:
            await self.fetch(repository, clone_url,
                             {sha: f"{PRIVATE_REF_PREFIX}commit/{sha}" for sha in missing},
                             token=token)
        return self.path(repository)

    async def _rev_parse(self, git_dir: Path, ref: str) -> str:
        out, _, _ = await self.run_git(["rev-parse", "--verify", f"{ref}^{{commit}}"], git_dir)
        return out.strip()

    async def run_git(
        self,
        args: Sequence[str],
        git_dir: Path | None,
        *,
        token: Token | None = None,
        url: str = "",
        check: bool = True,
    ) -> tuple[str, str, int]:
        """Run git; returns (stdout, stderr, exit code). Failures raise GitError with git's words,
        scrubbed of the token in case a remote ever echoes it back."""
        argv = [self._git, *([f"--git-dir={git_dir}"] if git_dir is not None else []), *args]
        env = auth_env(token, url, os.environ)
        held = self._held.get(git_dir) if git_dir is not None else None
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=env,
            pass_fds=() if held is None else (held,),
        )
        try:
            out_b, err_b = await asyncio.wait_for(proc.communicate(), self._timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise GitError(f"git {args[0]} timed out after {self._timeout:g} s") from None
        out = out_b.decode(errors="replace")
        err = _scrub(err_b.decode(errors="replace"), token)
        if check and proc.returncode != 0:
            verb = next((a for a in args if not a.startswith("-") and "=" not in a), "")
            raise GitError(f"git {verb} failed ({proc.returncode}): {last_lines(err)}")
        return out, err, proc.returncode or 0


def _remove_stale_git_locks(git_dir: Path) -> None:
    """Delete the ``*.lock`` files a killed git left in a bare repository (see `locked`)."""
    stale = [git_dir / name for name in ("packed-refs.lock", "shallow.lock", "HEAD.lock",
                                         "config.lock", "index.lock")]
    refs = git_dir / "refs"
    if refs.is_dir():
        stale += refs.rglob("*.lock")
    for path in stale:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            log.warning("removed %s, left by a git that was stopped mid-write", path)


def _scrub(text: str, token: Token | None) -> str:
    secret = _secret(token)
    if not secret:
        return text
    basic = base64.b64encode(f"x-access-token:{secret}".encode()).decode()
    return text.replace(secret, "***").replace(basic, "***")


def last_lines(text: str, count: int = 5) -> str:
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    interesting = [line for line in lines if not line.startswith("remote: Counting")]
    return " | ".join(interesting[-count:]) or "(no message)"
