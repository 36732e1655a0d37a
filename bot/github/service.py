"""What the GitHub handlers and jobs share: the App client, the run store and index, the
repository cache, and how to make an engine. One per process, passed explicitly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.agents.llm import LlmClient
from bot.engine.pipeline import Engine
from bot.github.capabilities import WORK_PERMISSIONS
from bot.github.client import GitHubApp, RepoClient
from bot.github.repo_cache import RepoCache
from bot.metrics import Metrics
from bot.queue.interface import QueueStore, RunIndex
from bot.runs.store import RunStore
from bot.runs.store_factory import open_run_store
from bot.schemas.run import RunContext
from bot.settings import GitHubSettings, Settings


@dataclass
class GitHubService:
    app: GitHubApp
    settings: Settings
    runs: RunStore
    queue: QueueStore
    index: RunIndex
    cache: RepoCache
    llm: LlmClient | None = None
    metrics: Metrics = field(default_factory=Metrics)
    #: Replies to commands on one pull request are capped (a comment storm cannot make gwi spam).
    reply_limit: int = 5
    reply_window: float = 600.0
    #: Commands one sender may give on one repository in a window before gwi stops reacting,
    #: auditing and replying to them (people with the approver role are never stopped).
    command_limit: int = 10
    command_window: float = 600.0

    def work_client(self, installation_id: int, repository: str) -> RepoClient:
        """A client whose token can read, comment and report, and cannot write code."""
        return self.app.repo(installation_id, repository, WORK_PERMISSIONS)

    def engine(self, repository: Path | None = None) -> Engine:
        """A fresh engine per job: its analysis cache is not shared between threads.
        ``repository``: this host's git repository for the run (see `workspace`)."""
        return Engine(store=self.runs, llm=self.llm, repository=repository)

    async def workspace(self, client: RepoClient, ctx: RunContext) -> Path:
        """The run's repository on this host, holding its head and base: the repository cache
        is per host, and a run made by a process on another host is continued (or its approved
        patch committed) here, so its commits are fetched when this cache lacks them."""
        repo = await client.get_repo()
        clone_url = repo.clone_url or f"https://github.com/{ctx.repository.full_name}.git"
        return await self.cache.ensure_commits(ctx.repository.full_name, clone_url,
                                               [ctx.head.sha, ctx.base.sha],
                                               token=await client.token())


@asynccontextmanager
async def open_service(settings: Settings, github: GitHubSettings, queue: QueueStore,
                       metrics: Metrics, **app_options: Any) -> AsyncIterator[GitHubService]:
    """The process's GitHub service, with its HTTP session, for as long as the server runs.

    ``app_options`` go to `GitHubApp` (a retry policy, clocks: tests)."""
    from bot.agents.llm import make_llm

    async with GitHubApp.connect(github, observer=metrics, **app_options) as app:
        index = queue.run_index()
        await index.ensure_schema()
        llm = make_llm(settings.llm)
        runs = open_run_store(settings)
        try:
            yield GitHubService(app=app, settings=settings,
                                runs=runs, queue=queue, index=index,
                                cache=RepoCache(settings.data_dir), llm=llm,
                                metrics=metrics)
        finally:
            runs.close()
            if llm is not None:
                llm.close()
