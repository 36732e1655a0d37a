"""The one end-to-end harness for the GitHub App: the real web application and workers, the
fake GitHub (checked against GitHub's API description), and a real bare git repository as the
remote. Tests post signed webhooks and assert on what GitHub and the remote received."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.runs.store import RunStore
from bot.runs.view import RunView
from bot.server.app import STORE
from tests.conftest import GITHUB_INSTALLATION_ID, GITHUB_REPO, signed_headers
from tests.support import git

_ids = itertools.count(1000)
DONE_STATES = frozenset({"done", "failed", "cancelled"})


@dataclass
class Remote:
    """A bare repository standing in for github.com's copy, and a work tree to commit in."""

    bare: Path
    work: Path

    @classmethod
    def create(cls, root: Path, files: dict[str, str]) -> Remote:
        bare, work = root / "remote.git", root / "work"
        root.mkdir(parents=True, exist_ok=True)
        git(root, "init", "-q", "--bare", "-b", "main", str(bare))
        git(root, "init", "-q", "-b", "main", str(work))
        remote = cls(bare, work)
        remote.commit("main", dict(files), "initial", initial=True)
        return remote

    def commit(self, branch: str, files: dict[str, str | None], message: str, *,
               new_branch: bool = False, start: str = "main", initial: bool = False) -> str:
        if initial:
            pass  # the unborn main branch of a new repository
        elif new_branch:
            git(self.work, "checkout", "-q", "-b", branch, start)
        else:
            git(self.work, "checkout", "-q", branch)
        for rel, content in files.items():
            path = self.work / rel
            if content is None:
                git(self.work, "rm", "-q", "--", rel)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
            git(self.work, "add", "--", rel)
        git(self.work, "commit", "-q", "--allow-empty", "-m", message)
        sha = git(self.work, "rev-parse", "HEAD").strip()
        git(self.work, "push", "-q", "--force", str(self.bare), f"{branch}:refs/heads/{branch}")
        return sha

    def sha(self, ref: str) -> str:
        return git(self.bare, "rev-parse", ref).strip()

    def show(self, ref: str, path: str) -> str:
        return git(self.bare, "show", f"{ref}:{path}").strip()

    def set_pull_ref(self, number: int, sha: str) -> None:
        git(self.bare, "update-ref", f"refs/pull/{number}/head", sha)


@dataclass
class Bot:
    """The running App, the fake GitHub and the remote, with helpers to talk to them."""

    client: TestClient[Any, Any]
    fake: Any
    remote: Remote
    runs: RunStore
    repo: str = GITHUB_REPO
    installation: int = GITHUB_INSTALLATION_ID
    sent: list[str] = field(default_factory=list)

    # -- what GitHub would send ---------------------------------------------------------------
    async def deliver(self, event: str, payload: dict[str, Any], *,
                      delivery_id: str | None = None, wait: bool = True) -> int:
        payload = {**payload, "installation": {"id": self.installation}}
        body = json.dumps(payload).encode()
        delivery = delivery_id or f"delivery-{next(_ids)}"
        self.sent.append(delivery)
        response = await self.client.post("/webhook", data=body,
                                          headers=signed_headers(body, event, delivery))
        if wait:
            await self.idle()
        return response.status

    def _repo_json(self) -> dict[str, Any]:
        return {"full_name": self.repo, "name": self.repo.split("/")[1],
                "clone_url": self.remote.bare.as_uri(), "owner": {"login": self.repo.split("/")[0]}}

    def pull_payload(self, number: int, action: str, **changes: Any) -> dict[str, Any]:
        pull = self.fake.pull(self.repo, number)
        return {
            "action": action,
            "number": number,
            "pull_request": {
                "number": number, "state": pull.state, "draft": pull.draft,
                "head": {"ref": pull.head_ref, "sha": pull.head_sha, "repo": self._repo_json()},
                "base": {"ref": pull.base_ref, "sha": pull.base_sha, "repo": self._repo_json()},
                "user": {"login": pull.user, "id": 5, "type": "User"},
            },
            "repository": self._repo_json(),
            "sender": {"login": pull.user, "id": 5, "type": "User"},
            **({"changes": changes} if changes else {}),
        }

    def comment_payload(self, number: int, body: str, *, login: str = "maya",
                        user_type: str = "User", action: str = "created",
                        comment_id: int | None = None,
                        created_at: datetime | None = None) -> dict[str, Any]:
        comment = self.fake.add_comment(self.repo, number, body, user=login)
        if comment_id is not None:
            comment.id = comment_id
        if created_at is not None:
            comment.created_at = comment.updated_at = created_at
        now = (created_at or datetime.now(UTC)).isoformat()
        user = {"login": login, "id": self.fake.user_id(login), "type": user_type}
        return {
            "action": action,
            "issue": {"number": number, "state": "open", "user": user,
                      "pull_request": {"url": f"https://api.github.com/repos/{self.repo}/pulls/"
                                       f"{number}"}},
            "comment": {"id": comment.id, "body": body, "user": user,
                        "html_url": f"https://github.com/{self.repo}/pull/{number}#issuecomment-"
                        f"{comment.id}", "created_at": now, "updated_at": now,
                        "author_association": "OWNER"},
            "repository": self._repo_json(),
            "sender": user,
        }

    # -- seeding a pull request ------------------------------------------------------------
    def open_pull(self, number: int, head_branch: str, *, base: str = "main",
                  user: str = "contributor", **extra: Any) -> Any:
        head = self.remote.sha(f"refs/heads/{head_branch}")
        self.remote.set_pull_ref(number, head)
        self.sync_base(base)
        return self.fake.add_pull(self.repo, number=number, head_sha=head,
                                  base_sha=self.remote.sha(f"refs/heads/{base}"),
                                  head_ref=head_branch, base_ref=base, user=user, **extra)

    def sync_base(self, base: str = "main") -> None:
        self.fake.set_ref(self.repo, f"heads/{base}", self.remote.sha(f"refs/heads/{base}"))

    def push(self, number: int, files: dict[str, str | None], message: str = "more") -> str:
        """Push to the PR's branch (as its author would) and tell the fake."""
        pull = self.fake.pull(self.repo, number)
        sha = self.remote.commit(pull.head_ref, files, message)
        self.remote.set_pull_ref(number, sha)
        pull.head_sha = sha
        self.fake.set_ref(self.repo, f"heads/{pull.head_ref}", sha)
        return sha

    # -- waiting and looking ------------------------------------------------------------------
    async def idle(self, timeout: float = 60.0) -> None:
        """Wait until every stored delivery and job has been processed."""
        store = self.client.app[STORE]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            counts = await store.counts()
            busy = sum(n for s, n in counts.deliveries.items() if s not in DONE_STATES)
            busy += sum(n for s, n in counts.jobs.items() if s not in DONE_STATES)
            if not busy:
                return
            if loop.time() > deadline:
                raise AssertionError(f"still busy after {timeout}s: {counts}")
            await asyncio.sleep(0.02)

    def check_runs(self) -> list[Any]:
        return [c for c in self.fake.check_runs.values() if c.name == "gwi"]

    def comments(self, number: int) -> list[Any]:
        return self.fake.comments_on(self.repo, number)

    def bot_comments(self, number: int) -> list[Any]:
        return [c for c in self.comments(number) if c.via_app]

    def views(self) -> list[RunView]:
        return [RunView.load(self.runs, run_id) for run_id in self.runs.list_ids()]
