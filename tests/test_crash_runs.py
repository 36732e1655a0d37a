"""A real `gwi serve` killed with SIGKILL at every kill point of a run and its push, then restarted.

Each life of the server is armed with one point of `tests.crash_hooks.KILL_POINTS` (git mid-fetch,
the engine's stages, the reports to GitHub, the approval and each step of the push), gets a new
pull request, approves each patch GitHub shows, and dies at that point with its whole process
group, the work of earlier lives still in flight. A last life, unarmed, finishes everything. Then:
every delivery was processed, every run has ended (each pull request's newest pushed), every
check-run is completed, no comment is doubled, and each branch was pushed once, with the commit
its run made from the approved patch.

The points are split between two servers with their own data and repository, which live side
by side (the machine's cores are used, and the fake GitHub serves both); each also dies twice
at a random moment, from outside, wherever its work happens to be.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.queue.schema import DB_FILENAME
from bot.runs.bundle import RunNotFound
from bot.runs.folder_store import FolderRunStore
from bot.runs.verify import verify_bundle
from bot.schemas.audit import AuditAction
from bot.schemas.state import Outcome, RunState
from tests.conftest import GITHUB_INSTALLATION_ID, app_env, signed_headers
from tests.crash_hooks import KILL_POINTS
from tests.github_harness import Remote
from tests.support import git

TESTS = Path(__file__).resolve().parent
SECRET = "test-webhook-secret"
LIFE_TIMEOUT = 60.0
APPROVE = re.compile(r"/gwi approve (sha256:[0-9a-f]{64})")
CHAINS = 2
RANDOM = "random"


def pin_file(number: int) -> str:
    return f"requirements/pr{number}.txt"


def pins(version: str, number: int) -> str:
    """Each pull request bumps its own pin and main bumps them all further: one conflict each,
    which the offline resolver settles (the higher version), so every run awaits approval."""
    return f"# pins for change {number}\nlib{number}=={version}\nother==1.0.0\n"


class Server:
    """One life of `gwi serve`, in its own process group so a kill takes its git too."""

    def __init__(self, env: dict[str, str], log: Path, kill_at: str | None) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "serve", "--extra-module", "crash_hooks"],
                env={**env, "GWI_KILL_AT": kill_at or ""}, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        self.port = 0

    async def started(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = re.search(r"msg=serve\.listening host=\S+ port=(\d+)", self.log.read_text())
            if found:
                self.port = int(found.group(1))
                return
            if self.proc.poll() is not None:
                raise AssertionError(f"gwi serve exited early:\n{self.tail()}")
            await asyncio.sleep(0.02)
        raise AssertionError(f"gwi serve did not start:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text()[-6000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@dataclass
class Chain:
    """One repository and one data dir, and the lives of the server that works on them.

    It also plays GitHub and the people on it: delivers each event (again, if the server died
    while taking it) and approves a patch once a check-run shows it.
    """

    fake: Any
    root: Path
    repo: str
    points: list[str]
    outbox: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    accepted: set[str] = field(default_factory=set)
    approved: dict[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.prs = len(self.points) + 1
        self.data_dir = self.root / "data"
        self.kill_log = self.root / "kills.log"
        self.pushes = self.root / "pushes.log"
        self.runs = FolderRunStore(self.data_dir, self.root / "signing-key.pem")
        self.remote = self._seed()

    def _seed(self) -> Remote:
        fake, repo, prs = self.fake, self.repo, self.prs
        fake.add_repo(repo, installation_id=GITHUB_INSTALLATION_ID)
        remote = Remote.create(self.root / "github", {pin_file(n): pins("1.0.0", n)
                                                      for n in range(1, prs + 1)})
        for number in range(1, prs + 1):
            remote.commit(f"change-{number}", {pin_file(number): pins("1.1.0", number)},
                          f"bump lib{number}", new_branch=True)
        remote.commit("main", {pin_file(n): pins("1.2.0", n) for n in range(1, prs + 1)},
                      "bump every lib")
        fake.repo(repo).clone_url = remote.bare.as_uri()
        fake.set_collaborator(repo, "maya", "maintain")
        fake.set_ref(repo, "heads/main", remote.sha("refs/heads/main"))
        for number in range(1, prs + 1):
            head = remote.sha(f"refs/heads/change-{number}")
            remote.set_pull_ref(number, head)
            fake.add_pull(repo, number=number, head_sha=head,
                          base_sha=remote.sha("refs/heads/main"), head_ref=f"change-{number}")
            fake.set_ref(repo, f"heads/change-{number}", head)
        # Every ref update the remote makes, from now on. post-receive, not update: the update
        # hook runs before the ref moves, for updates that may then not happen (seen once
        # under load: two lines for one branch); post-receive gets "old new ref" on stdin
        # for each ref actually updated.
        hook = remote.bare / "hooks" / "post-receive"
        hook.write_text('#!/bin/sh\nwhile read old new ref; do echo "$ref $old $new"'
                        f' >> "{self.pushes}"; done\n')
        hook.chmod(0o755)
        self.kill_log.touch()
        self.pushes.touch()
        return remote

    def env(self) -> dict[str, str]:
        return {
            **os.environ, **app_env(),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS),
                                                        os.environ.get("PYTHONPATH")])),
            "GITHUB_API_URL": self.fake.base_url, "GITHUB_WEBHOOK_SECRET": SECRET,
            "GWI_DATA_DIR": str(self.data_dir),
            "GWI_SIGNING_KEY": str(self.root / "signing-key.pem"),
            "GWI_HOST": "127.0.0.1", "PORT": "0", "GWI_WORKERS": "2", "GWI_LEASE_SECONDS": "1",
            "GWI_KILL_LOG": str(self.kill_log), "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
        }

    # -- what GitHub and its people do ------------------------------------------------------
    def repo_json(self) -> dict[str, Any]:
        owner, name = self.repo.split("/")
        return {"full_name": self.repo, "name": name, "clone_url": self.remote.bare.as_uri(),
                "owner": {"login": owner}}

    def queue(self, delivery_id: str, event: str, payload: dict[str, Any]) -> None:
        payload = {**payload, "installation": {"id": GITHUB_INSTALLATION_ID}}
        self.outbox[delivery_id] = (event, json.dumps(payload).encode())

    def open(self, number: int) -> None:
        pull = self.fake.pull(self.repo, number)
        user = {"login": pull.user, "id": 5, "type": "User"}
        side = {"repo": self.repo_json()}
        self.queue(f"opened-{number}", "pull_request", {
            "action": "opened", "number": number,
            "pull_request": {"number": number, "state": "open", "draft": False, "user": user,
                             "head": {"ref": pull.head_ref, "sha": pull.head_sha, **side},
                             "base": {"ref": "main", "sha": pull.base_sha, **side}},
            "repository": self.repo_json(), "sender": user,
        })

    def approve_what_is_shown(self) -> None:
        for check in list(self.fake.check_runs.values()):
            if check.repo != self.repo.lower() or check.conclusion != "action_required":
                continue
            found = APPROVE.search(check.output.get("summary", ""))
            number = next(p.number for p in self.fake.pulls.values()
                          if p.repo == check.repo and p.head_sha == check.head_sha)
            if found is None or number in self.approved:
                continue
            body = f"/gwi approve {found.group(1)}"
            comment = self.fake.add_comment(self.repo, number, body, user="maya")
            self.approved[number] = found.group(1)
            # the account id GitHub gives maya, and the time she writes: after the patch
            user = {"login": "maya", "type": "User",
                    "id": int(hashlib.sha1(b"maya").hexdigest()[:8], 16)}
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.queue(f"approve-{number}", "issue_comment", {
                "action": "created", "repository": self.repo_json(), "sender": user,
                "issue": {"number": number, "state": "open", "user": user,
                          "pull_request": {"url": f"https://api.github.com/repos/{self.repo}"
                                                  f"/pulls/{number}"}},
                "comment": {"id": comment.id, "body": body, "user": user,
                            "html_url": f"https://github.com/{self.repo}/pull/{number}"
                                        f"#issuecomment-{comment.id}",
                            "created_at": now, "updated_at": now,
                            "author_association": "MEMBER"},
            })

    async def flush(self, session: aiohttp.ClientSession, port: int) -> None:
        for delivery_id, (event, body) in list(self.outbox.items()):
            if delivery_id in self.accepted:
                continue
            try:
                async with session.post(
                    f"http://127.0.0.1:{port}/webhook", data=body,
                    headers=signed_headers(body, event, delivery_id, SECRET),
                ) as response:
                    if response.status in (200, 202):
                        self.accepted.add(delivery_id)
            except aiohttp.ClientError:
                return  # the server died under us: the next life gets it again

    # -- the lives ---------------------------------------------------------------------------
    async def live(self, session: aiohttp.ClientSession) -> None:
        """One life per kill point, then a last one that finishes. A point named ``random``
        is no hook: the test kills the process group itself, at a random moment."""
        rng = random.Random(self.repo)
        for life, point in enumerate([*self.points, None]):
            self.open(life + 1)
            armed = point if point in KILL_POINTS else None
            server = Server(self.env(), self.root / f"life-{life:02d}.log", armed)
            try:
                await server.started()
                deadline = time.monotonic() + LIFE_TIMEOUT
                kill_at = time.monotonic() + rng.uniform(0.1, 1.5)
                while server.proc.poll() is None:
                    await self.flush(session, server.port)
                    self.approve_what_is_shown()
                    if point is None and self.settled():
                        break
                    if point == RANDOM and time.monotonic() > kill_at:
                        os.killpg(server.proc.pid, signal.SIGKILL)
                        server.proc.wait()
                        break
                    assert time.monotonic() < deadline, (
                        f"{self.repo} life {life} ({point}) neither died nor settled"
                        f" ({self.unsettled()}):\n" + server.tail())
                    await asyncio.sleep(0.05)
            finally:
                server.stop()
            if point is not None:
                assert server.proc.returncode == -signal.SIGKILL, server.tail()
            if armed is not None:
                assert self.kill_log.read_text().splitlines()[-1] == armed

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with sqlite3.connect(self.data_dir / DB_FILENAME) as conn:
            return conn.execute(sql).fetchall()

    def settled(self) -> bool:
        """The queue is drained and each pull request's newest run has pushed."""
        return self.unsettled() is None

    def unsettled(self) -> str | None:
        """What keeps the chain from being settled (said when a life times out), or None."""
        if not (self.data_dir / DB_FILENAME).exists():
            return "no queue database yet"
        busy = self.query(
            "SELECT kind, status, COUNT(*) FROM jobs WHERE status IN ('pending', 'running')"
            " GROUP BY 1, 2")
        deliveries = self.query(
            "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'processing')")[0][0]
        if busy or deliveries:
            return f"queue not drained: {deliveries} deliveries, jobs {busy}"
        try:
            newest = self.newest_runs()
        except RunNotFound as exc:  # a bundle being created this moment: run.json comes next
            return f"a bundle without run.json: {exc}"
        if len(newest) != self.prs:
            return f"runs for {sorted(newest)} of {self.prs} pull requests"
        waiting = {n: (c.state.value, str(c.outcome)) for n, c in newest.items()
                   if c.outcome is not Outcome.APPLIED}
        return f"newest runs not applied: {waiting}" if waiting else None

    def newest_runs(self) -> dict[int, Any]:
        newest: dict[int, Any] = {}
        for run_id in self.runs.list_ids():
            ctx = self.runs.read_context(run_id)
            assert ctx.pull_request is not None
            number = ctx.pull_request.number
            if number not in newest or ctx.created_at > newest[number].created_at:
                newest[number] = ctx
        return newest

    # -- what must hold afterwards -----------------------------------------------------------
    def check(self) -> None:
        fake, repo = self.fake, self.repo
        assert self.kill_log.read_text().splitlines() == [
            p for p in self.points if p in KILL_POINTS]
        assert self.query("SELECT status, COUNT(*) FROM deliveries GROUP BY 1") == [
            ("done", len(self.accepted))]
        # A job whose worker died under it five times is failed (it may be what kills the
        # process); whatever it was doing was then finished by the start-up reconciliation.
        for kind, error in self.query("SELECT kind, last_error FROM jobs"
                                      " WHERE status NOT IN ('done', 'cancelled')"):
            assert error.startswith("lease expired"), (kind, error)
        by_pr: dict[int, list[Any]] = {}
        for run_id in self.runs.list_ids():
            ctx = self.runs.read_context(run_id)
            assert ctx.state in (RunState.DONE, RunState.FAILED, RunState.ABORTED), ctx
            report = verify_bundle(self.runs.run_dir(run_id),
                                   trusted_keys={self.runs.signer.public_key_hex})
            assert report.ok, (run_id, report.problems)
            assert ctx.pull_request is not None
            by_pr.setdefault(ctx.pull_request.number, []).append(ctx)
        assert sorted(by_pr) == list(range(1, self.prs + 1))
        checks = [c for c in fake.check_runs.values() if c.repo == repo.lower()]
        assert {c.status for c in checks} == {"completed"}
        assert max(Counter(c.external_id for c in checks).values()) == 1
        for number in range(1, self.prs + 1):
            mine = [c for c in fake.comments_on(repo, number) if c.via_app]
            assert len([c for c in mine if "gwi:status" in c.body]) == 1, number
            assert len([c for c in mine if "approved: pushing" in c.body]) == 1, number
        updates = [line.split() for line in self.pushes.read_text().splitlines()]
        assert Counter(ref for ref, _, _ in updates) == Counter(
            f"refs/heads/change-{n}" for n in range(1, self.prs + 1))
        for ref, old, new in updates:
            number = int(ref.rsplit("-", 1)[1])
            [applied] = [c for c in by_pr[number] if c.outcome is Outcome.APPLIED]
            events = self.runs.read_chain(applied.run_id).events
            [made] = [e for e in events if e.action is AuditAction.COMMIT_CREATED]
            assert made.data["commit"] == new and old == applied.head.sha
            assert [e for e in events if e.action is AuditAction.APPROVAL_RECORDED]
            content = git(self.remote.bare, "show", f"{new}:{pin_file(number)}").strip()
            assert f"lib{number}==1.2.0" in content


def _with_random(points: list[str]) -> list[str]:
    third = len(points) // 3
    return [*points[:third], RANDOM, *points[third:2 * third], RANDOM, *points[2 * third:]]


@pytest.mark.slow
async def test_sigkill_at_every_point_of_runs_and_pushes_then_restart(
    fake_github: Any, tmp_path: Path
) -> None:
    points = list(KILL_POINTS)
    assert len(points) >= 20
    # each chain also dies twice at a random moment, wherever its work happens to be
    chains = [Chain(fake_github, tmp_path / f"chain-{n}", f"octo-org/crash-{n}",
                    _with_random(points[n::CHAINS]))
              for n in range(CHAINS)]
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(chain.live(session) for chain in chains))
    for chain in chains:
        chain.check()
