"""Worlds for the approval gate's tests: a repository with its own bare remote and a pull request
whose conflict gwi resolves offline, so its run awaits approval. Many worlds can share one running
App (each in its own repository), so a table of attacks runs at once instead of one by one."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.runs.view import RunView
from bot.schemas.audit import AuditAction
from bot.schemas.state import RunState
from tests.github_harness import Bot, Remote
from tests.support import git

BASE = {"requirements.txt": "flask==2.0.0\nrequests==2.0.0\n", "README.md": "hello\n"}
PR = 7
BRANCH = "feature"
REFUSALS = (AuditAction.APPROVAL_REFUSED, AuditAction.APPLY_REFUSED)
#: Who is who in every world (the pull request's author is "contributor").
ROLES = {"maya": "write", "omar": "maintain", "rita": "read", "tess": "triage",
         "contributor": "write"}


class RepoBot(Bot):
    """A `Bot` that sees only its own repository's runs and check-runs."""

    def views(self) -> list[RunView]:
        return [v for v in super().views()
                if v.ctx.repository.full_name.lower() == self.repo.lower()]

    def check_runs(self) -> list[Any]:
        return [c for c in super().check_runs() if c.repo == self.repo.lower()]


def seed(bot: Bot, config: str | None = None) -> None:
    """The conflict (both sides bumped one pin), the pull request, the people, and a reflog on
    the remote's branches so that tests can count pushes."""
    make_conflict(bot.remote)
    bot.open_pull(PR, BRANCH)
    introduce(bot, config)


def make_conflict(remote: Remote) -> None:
    remote.commit(BRANCH, {"requirements.txt": "flask==2.0.0\nrequests==2.1.0\n"},
                  "feature: requests 2.1", new_branch=True)
    remote.commit("main", {"requirements.txt": "flask==2.0.0\nrequests==2.2.0\n"},
                  "main: requests 2.2")
    git(remote.bare, "config", "core.logAllRefUpdates", "always")


def introduce(bot: Bot, config: str | None) -> None:
    """The repository's settings and people, on the fake GitHub."""
    if config is not None:
        bot.fake.set_file(bot.repo, ".github/gwi.yml", config)
    for login, role in ROLES.items():
        bot.fake.set_collaborator(bot.repo, login, role)


@dataclass(frozen=True)
class Template:
    """A seeded remote to copy: copying folders costs far less than building with git."""

    remote: Remote
    head: str
    base: str

    @classmethod
    def build(cls, root: Path) -> Template:
        remote = Remote.create(root / "template", BASE)
        make_conflict(remote)
        head = remote.sha(f"refs/heads/{BRANCH}")
        remote.set_pull_ref(PR, head)
        return cls(remote, head, remote.sha("refs/heads/main"))


async def new_world(arena: Bot, template: Template, root: Path, name: str,
                    config: str | None = None) -> RepoBot:
    """A repository ``octo-org/<name>`` beside the arena's, seeded (its run not started)."""
    full = f"octo-org/{name}"
    remote = Remote(shutil.copytree(template.remote.bare, root / name / "remote.git"),
                    shutil.copytree(template.remote.work, root / name / "work", symlinks=True))
    arena.fake.add_repo(full, installation_id=arena.installation, clone_url=remote.bare.as_uri())
    bot = RepoBot(client=arena.client, fake=arena.fake, remote=remote, runs=arena.runs, repo=full)
    bot.fake.set_ref(full, "heads/main", template.base)
    bot.fake.add_pull(full, number=PR, head_sha=template.head, base_sha=template.base,
                      head_ref=BRANCH, base_ref="main", user="contributor")
    introduce(bot, config)
    return bot


def awaiting_view(bot: Bot) -> RunView:
    [view] = bot.views()
    assert view.ctx.state is RunState.AWAITING_APPROVAL, view.ctx.history[-1].reason
    return view


async def awaiting(make_bot: Callable[..., Any], config: str | None = None,
                   **settings: Any) -> tuple[RepoBot, RunView]:
    """One world, on the App's own repository: the run awaits approval."""
    made = await make_bot(BASE, **settings)
    bot = RepoBot(client=made.client, fake=made.fake, remote=made.remote, runs=made.runs)
    seed(bot, config)
    await bot.deliver("pull_request", bot.pull_payload(PR, "opened"))
    return bot, awaiting_view(bot)


def approve(view: RunView) -> str:
    return f"/gwi approve {view.patch_hash}"


def events(bot: Bot, run_id: str) -> list[Any]:
    return list(bot.runs.read_chain(run_id).events)


def refusal_codes(bot: Bot, run_id: str) -> list[str]:
    return [str(e.data["code"]) for e in events(bot, run_id) if e.action in REFUSALS]


def pushes(bot: Bot, branch: str = BRANCH) -> int:
    """How many times the remote's branch moved since `seed` turned its reflog on."""
    out = git(bot.remote.bare, "reflog", "show", "--format=%H", f"refs/heads/{branch}").strip()
    return len(out.splitlines()) if out else 0


def push_tokens(bot: Bot) -> list[Any]:
    """Tokens with contents write that reach the bot's repository."""
    return [t for t in bot.fake.tokens if t.permissions.get("contents") == "write"
            and (t.repositories is None or bot.repo.lower() in t.repositories)]


def replies(bot: Bot, login: str = "maya", number: int = PR) -> list[str]:
    return [c.body for c in bot.bot_comments(number) if c.body.startswith(f"@{login} ")]


def newest(bot: Bot) -> RunView:
    return max(bot.views(), key=lambda v: v.ctx.created_at)
