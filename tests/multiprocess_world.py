"""Real `gwi serve --web-only` and `gwi worker` processes for the multi-process tests.

Each process runs in its own process group (a SIGKILL takes its git too) with its own data
folder, all sharing one PostgreSQL database, one signing key and the one fake GitHub; the job
kinds of ``tests/multiprocess_hooks.py`` are loaded into each. Helpers send signed deliveries,
read the database, and wait on conditions (never a fixed sleep).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psycopg

from bot.runs.signing import load_or_create_signer
from tests.conftest import GITHUB_INSTALLATION_ID, app_env, signed_headers
from tests.github_harness import Remote
from tests.support import git

TESTS = Path(__file__).resolve().parent
REPO = "octo-org/fleet"


class Proc:
    """One `gwi serve --web-only` or `gwi worker` process; its port once it listens."""

    def __init__(self, role: str, env: dict[str, str], log: Path) -> None:
        self.role, self.log = role, log
        command = (["serve", "--web-only"] if role == "web" else ["worker"])
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", *command, "--extra-module", "multiprocess_hooks"],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.port = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    async def started(self) -> None:
        async def listening() -> bool:
            found = re.search(r"msg=serve\.listening host=\S+ port=(\d+)", self.log.read_text())
            if found:
                self.port = int(found.group(1))
                return True
            assert self.proc.poll() is None, f"{self.role} exited early:\n{self.tail()}"
            return False

        await until(listening, 60, f"{self.role} to listen")

    def tail(self) -> str:
        return self.log.read_text()[-6000:]

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> int:
        """SIGTERM, as a platform stops a process; its exit status."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


async def until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Wait until ``condition()`` holds, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class World:
    """The fake GitHub with one repository, a PostgreSQL database, and the processes."""

    def __init__(self, fake: Any, root: Path, database_url: str) -> None:
        self.fake, self.root, self.url = fake, root, database_url
        self.key = root / "signing-key.pem"
        load_or_create_signer(self.key, announce=False)  # one key for every process, made before any starts
        self.storm_log = root / "storm.log"
        self.storm_log.touch()
        self.release = root / "release"
        self.procs: list[Proc] = []
        self.remote: Remote | None = None

    def start(self, role: str, **extra: str) -> Proc:
        name = f"{role}-{len(self.procs)}"
        env = {
            **os.environ, **app_env(),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS),
                                                        os.environ.get("PYTHONPATH")])),
            "GITHUB_API_URL": self.fake.base_url, "GITHUB_WEBHOOK_SECRET": "test-webhook-secret",
            "GWI_DATABASE_URL": self.url, "GWI_SIGNING_KEY": str(self.key),
            "GWI_DATA_DIR": str(self.root / name), "GWI_HOST": "127.0.0.1", "PORT": "0",
            "GWI_WORKERS": "2", "GWI_STORM_LOG": str(self.storm_log),
            "GWI_STORM_RELEASE": str(self.release), "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1", **extra,
        }
        proc = Proc(role, env, self.root / f"{name}.log")
        self.procs.append(proc)
        return proc

    def stop_all(self) -> dict[str, int]:
        return {f"{p.role}-{n}": p.stop() for n, p in enumerate(self.procs)}

    def data_dir(self, proc: Proc) -> Path:
        return self.root / f"{proc.role}-{self.procs.index(proc)}"

    # -- GitHub's side --------------------------------------------------------------------
    def seed(self, prs: int) -> None:
        """A repository whose pull requests 1..prs each change a file of their own."""
        self.fake.add_repo(REPO, installation_id=GITHUB_INSTALLATION_ID)
        remote = self.remote = Remote.create(self.root / "github", {"README.md": "fleet\n"})
        for number in range(1, prs + 1):
            remote.commit(f"change-{number}", {f"docs/{number}.md": f"change {number}\n"},
                          f"change {number}", new_branch=True)
        self.fake.repo(REPO).clone_url = remote.bare.as_uri()
        self.fake.set_ref(REPO, "heads/main", remote.sha("refs/heads/main"))
        for number in range(1, prs + 1):
            head = remote.sha(f"refs/heads/change-{number}")
            remote.set_pull_ref(number, head)
            self.fake.add_pull(REPO, number=number, head_sha=head,
                               base_sha=remote.sha("refs/heads/main"),
                               head_ref=f"change-{number}")
            self.fake.set_ref(REPO, f"heads/change-{number}", head)

    def seed_conflict(self, number: int) -> None:
        """Pull request ``number`` and main both bumped one pin: a conflict gwi resolves
        offline, so the run waits for an approval. Its branch keeps a reflog (pushes counted)."""
        assert self.remote is not None
        remote = self.remote
        remote.commit("main", {"requirements.txt": "requests==2.0.0\n"}, "pins")
        remote.commit(f"bump-{number}", {"requirements.txt": "requests==2.1.0\n"},
                      "requests 2.1", new_branch=True)
        remote.commit("main", {"requirements.txt": "requests==2.2.0\n"}, "requests 2.2")
        git(remote.bare, "config", "core.logAllRefUpdates", "always")
        head = remote.sha(f"refs/heads/bump-{number}")
        remote.set_pull_ref(number, head)
        self.fake.set_ref(REPO, "heads/main", remote.sha("refs/heads/main"))
        self.fake.set_ref(REPO, f"heads/bump-{number}", head)
        self.fake.add_pull(REPO, number=number, head_sha=head,
                           base_sha=remote.sha("refs/heads/main"), head_ref=f"bump-{number}")
        self.fake.set_collaborator(REPO, "maya", "maintain")

    def comment(self, number: int, body: str, login: str = "maya") -> tuple[str, bytes]:
        """An `issue_comment` `created` delivery's event and body (the comment is on the fake)."""
        assert self.remote is not None
        comment = self.fake.add_comment(REPO, number, body, user=login)
        owner, name = REPO.split("/")
        repo = {"full_name": REPO, "name": name, "owner": {"login": owner},
                "clone_url": self.remote.bare.as_uri()}
        user = {"login": login, "id": self.fake.user_id(login), "type": "User"}
        now = comment.created_at.isoformat()
        return "issue_comment", json.dumps({
            "action": "created", "repository": repo, "sender": user,
            "installation": {"id": GITHUB_INSTALLATION_ID},
            "issue": {"number": number, "state": "open", "user": user, "pull_request": {
                "url": f"https://api.github.com/repos/{REPO}/pulls/{number}"}},
            "comment": {"id": comment.id, "body": body, "user": user,
                        "html_url": f"https://github.com/{REPO}/pull/{number}#issuecomment-"
                        f"{comment.id}", "created_at": now, "updated_at": now,
                        "author_association": "MEMBER"},
        }).encode()

    def pushes(self, branch: str) -> int:
        """How many times the remote's branch moved since `seed_conflict` turned its reflog on."""
        assert self.remote is not None
        out = git(self.remote.bare, "reflog", "show", "--format=%H", f"refs/heads/{branch}")
        return len(out.strip().splitlines()) if out.strip() else 0

    def opened(self, number: int) -> tuple[str, bytes]:
        """A `pull_request` `opened` delivery's event and body."""
        assert self.remote is not None
        pull = self.fake.pull(REPO, number)
        owner, name = REPO.split("/")
        repo = {"full_name": REPO, "name": name, "owner": {"login": owner},
                "clone_url": self.remote.bare.as_uri()}
        user = {"login": pull.user, "id": 5, "type": "User"}
        return "pull_request", json.dumps({
            "action": "opened", "number": number, "repository": repo, "sender": user,
            "installation": {"id": GITHUB_INSTALLATION_ID},
            "pull_request": {"number": number, "state": "open", "draft": False, "user": user,
                             "head": {"ref": pull.head_ref, "sha": pull.head_sha, "repo": repo},
                             "base": {"ref": "main", "sha": pull.base_sha, "repo": repo}},
        }).encode()

    def check_runs_by_head(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        for check in self.fake.check_runs.values():
            if check.repo == REPO.lower():
                found.setdefault(check.head_sha, []).append(check)
        return found

    # -- the database -----------------------------------------------------------------------
    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(sql, params).fetchall()

    def busy(self) -> int:
        """Deliveries and jobs not yet finished."""
        [(count,)] = self.rows(
            "SELECT (SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'processing'))"
            " + (SELECT COUNT(*) FROM jobs WHERE status IN ('pending', 'running'))")
        return int(count)


def issue(delivery_id: str, *, hold: bool = False) -> tuple[str, bytes]:
    """An `issues` delivery's event and body (tests/multiprocess_hooks.py makes it a job)."""
    body: dict[str, Any] = {"action": "opened", "issue": {"number": len(delivery_id)}}
    if hold:
        body["hold"] = True
    return "issues", json.dumps(body).encode()


async def post(session: aiohttp.ClientSession, port: int, delivery_id: str,
               message: tuple[str, bytes]) -> int:
    """Deliver one webhook as GitHub does; its answer's status."""
    event, body = message
    async with session.post(f"http://127.0.0.1:{port}/webhook", data=body,
                            headers=signed_headers(body, event, delivery_id)) as response:
        await response.read()
        return response.status
