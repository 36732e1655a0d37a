"""The typed GitHub client: the App's own endpoints, and one repository's as an installation."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlencode

import aiohttp

from bot.github.auth import AppAuth, InstallationCredentials, InstallationToken
from bot.github.failures import GitHubError
from bot.github.markers import has_marker, with_marker
from bot.github.models import (
    CheckConclusion,
    CheckOutput,
    CheckRun,
    CollaboratorPermission,
    GitRef,
    IssueComment,
    Label,
    PullRequest,
    Reaction,
    ReactionContent,
    Repository,
    WebhookDelivery,
    github_time,
)
from bot.github.transport import CallObserver, GitHubTransport, HttpRetry
from bot.settings import GitHubSettings

_SHA = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def _seg(value: str | int) -> str:
    """One path segment, percent-encoded (a label may hold '/', '?' or '#')."""
    return quote(str(value), safe="")


def _ref_path(ref: str) -> str:
    """A ref for the git refs API: ``heads/main`` (a leading ``refs/`` is dropped)."""
    ref = ref.removeprefix("refs/")
    if not ref.startswith(("heads/", "tags/")):
        raise ValueError(f"ref must start with heads/ or tags/, not {ref!r}")
    return quote(ref, safe="/")


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class GitHubApp:
    """The App's view of GitHub. One per process; it hands out per-repository clients.

    ``transport_options`` (``sleep``, ``clock``, ``wall_clock``, ``rand``) reach
    :class:`GitHubTransport`; tests use them to make retry waits instant and visible.
    """

    def __init__(
        self,
        settings: GitHubSettings,
        session: aiohttp.ClientSession,
        *,
        policy: HttpRetry | None = None,
        auth_now: Callable[[], datetime] | None = None,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        clock: Callable[[], float] | None = None,
        wall_clock: Callable[[], float] | None = None,
        rand: Callable[[], float] | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        options: dict[str, Any] = _drop_none(
            {"sleep": sleep, "clock": clock, "wall_clock": wall_clock, "rand": rand,
             "observer": observer}
        )
        self.settings = settings
        self.transport = GitHubTransport(
            session,
            base_url=settings.api_url,
            user_agent=settings.user_agent,
            policy=policy,
            **options,
        )
        auth_options: dict[str, Any] = _drop_none({"now": auth_now})
        self.auth = AppAuth(settings, self.transport, **auth_options)
        self._app_info: dict[str, Any] | None = None

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: GitHubSettings, **options: Any) -> AsyncIterator[GitHubApp]:
        """Open an HTTP session for the App and close it afterwards."""
        async with aiohttp.ClientSession() as session:
            yield cls(settings, session, **options)

    def repo(
        self,
        installation_id: int,
        repository: str,
        permissions: Mapping[str, str] | None = None,
    ) -> RepoClient:
        """A client for ``owner/name`` whose token reaches that repository only.

        ``permissions`` narrows the token further (e.g. ``{"checks": "write"}``); by default
        it has every permission the installation granted.
        """
        return RepoClient(self, self.auth.credentials_for(installation_id, repository, permissions))

    async def get_app(self) -> dict[str, Any]:
        """``GET /app``: the App's own description (slug, owner, permissions). Cached."""
        if self._app_info is None:
            self._app_info = await self.transport.request(
                "GET", "/app", credentials=self.auth.app_credentials
            )
        return self._app_info

    async def bot_login(self) -> str:
        """The login GitHub shows on what the App writes: ``<slug>[bot]``."""
        return f"{(await self.get_app())['slug']}[bot]"

    async def get_repo_installation(self, repository: str) -> int:
        return await self.auth.get_repo_installation(repository)

    async def list_webhook_deliveries(
        self,
        *,
        status: Literal["success", "failure"] | None = None,
        limit: int = 100,
        since: datetime | None = None,
    ) -> list[WebhookDelivery]:
        """Recent deliveries, newest first (GitHub keeps them a few days); with ``since``,
        only those delivered at or after it (the walk stops at the first older one)."""
        query = urlencode(_drop_none({"per_page": min(limit, 100), "status": status}))

        def older(item: Any) -> bool:
            if since is None or not isinstance(item, dict):
                return False
            try:
                moment = datetime.fromisoformat(str(item.get("delivered_at")))
            except ValueError:
                return False
            return moment < since

        items = await self.transport.collect(
            f"/app/hook/deliveries?{query}",
            credentials=self.auth.app_credentials,
            limit=limit,
            until=older,
        )
        return [WebhookDelivery.model_validate(item) for item in items]

    async def redeliver_webhook_delivery(self, delivery_id: int) -> None:
        """Ask GitHub to send a delivery again: it never retries failed ones by itself."""
        await self.transport.request(
            "POST",
            f"/app/hook/deliveries/{int(delivery_id)}/attempts",
            credentials=self.auth.app_credentials,
        )


class RepoClient:
    """What gwi does on one repository: checks, comments, reactions, labels, reads.

    Obtained from :meth:`GitHubApp.repo`. Every call authenticates with a token scoped to
    this repository; a 404 that means "absent" becomes None where the method says so.
    """

    def __init__(self, app: GitHubApp, credentials: InstallationCredentials) -> None:
        self._app = app
        self._transport = app.transport
        self._credentials = credentials
        self.repository = credentials.repository
        self.installation_id = credentials.installation_id
        owner, _, name = credentials.repository.partition("/")
        self._base = f"/repos/{_seg(owner)}/{_seg(name)}"

    async def token(self) -> InstallationToken:
        """The current token for this repository (for git over HTTPS)."""
        return await self._credentials.token()

    async def _call(
        self, method: str, path: str, data: Any = b"", *, replay_safe: bool = True
    ) -> Any:
        return await self._transport.request(
            method,
            self._base + path,
            data=data,
            credentials=self._credentials,
            replay_safe=replay_safe,
        )

    async def _collect(self, path: str, *, iterable_key: str = "items") -> list[Any]:
        return await self._transport.collect(
            self._base + path, credentials=self._credentials, iterable_key=iterable_key
        )

    async def _call_or_none(self, method: str, path: str) -> Any:
        try:
            return await self._call(method, path)
        except GitHubError as exc:
            if exc.status == 404:
                return None
            raise

    # -- repository -------------------------------------------------------------------

    async def get_repo(self) -> Repository:
        """The repository, notably its ``default_branch`` and ``clone_url``."""
        return Repository.model_validate(await self._call("GET", ""))

    async def get_file(self, path: str, ref: str | None = None) -> bytes | None:
        """A file's bytes at ``ref`` (default branch when None); None when there is no file.

        Meant for small files such as ``.github/gwi.yml``: GitHub inlines content up to
        1 MB only, and a directory, symlink or submodule at ``path`` is an error.
        """
        query = f"?{urlencode({'ref': ref})}" if ref is not None else ""
        full = f"/contents/{quote(path.strip('/'), safe='/')}{query}"
        data = await self._call_or_none("GET", full)
        if data is None:
            return None
        if not isinstance(data, dict) or data.get("type") != "file":
            kind = "a directory" if isinstance(data, list) else f"a {data.get('type')}"
            raise GitHubError(f"{path} is {kind}, not a file", method="GET", path=self._base + full)
        if data.get("encoding") != "base64":
            raise GitHubError(
                f"{path} is too large to read through the contents API",
                method="GET",
                path=self._base + full,
            )
        try:
            return base64.b64decode(data.get("content", ""), validate=False)
        except (binascii.Error, ValueError):
            raise GitHubError(
                f"{path}: undecodable content", method="GET", path=self._base + full
            ) from None

    async def get_collaborator_permission(self, username: str) -> CollaboratorPermission:
        """The user's role here. Authorise on ``role_name``; an unknown user is "none"."""
        data = await self._call_or_none("GET", f"/collaborators/{_seg(username)}/permission")
        if data is None:
            return CollaboratorPermission(role_name="none", permission="none")
        return CollaboratorPermission.model_validate(data)

    # -- pull requests ----------------------------------------------------------------

    async def get_pull_request(self, number: int) -> PullRequest:
        return PullRequest.model_validate(await self._call("GET", f"/pulls/{int(number)}"))

    # -- check runs -------------------------------------------------------------------

    async def create_check_run(
        self,
        name: str,
        head_sha: str,
        *,
        status: Literal["queued", "in_progress", "completed"] = "queued",
        conclusion: CheckConclusion | None = None,
        output: CheckOutput | None = None,
        external_id: str | None = None,
        details_url: str | None = None,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
    ) -> CheckRun:
        if not _SHA.fullmatch(head_sha):
            raise ValueError(f"head_sha must be a full commit id, not {head_sha!r}")
        body = _drop_none(
            {
                "name": name,
                "head_sha": head_sha,
                "status": status,
                "conclusion": conclusion,
                "external_id": external_id,
                "details_url": details_url,
                "started_at": github_time(started_at) if started_at else None,
                "completed_at": github_time(completed_at) if completed_at else None,
                "output": output.model_dump(exclude_none=True) if output else None,
            }
        )
        # Not sent twice: a second check-run for one run would stay queued for ever.
        return CheckRun.model_validate(
            await self._call("POST", "/check-runs", body, replay_safe=False)
        )

    async def update_check_run(
        self,
        check_run_id: int,
        *,
        status: Literal["queued", "in_progress", "completed"] | None = None,
        conclusion: CheckConclusion | None = None,
        output: CheckOutput | None = None,
        details_url: str | None = None,
        completed_at: datetime | None = None,
    ) -> CheckRun:
        body = _drop_none(
            {
                "status": status,
                "conclusion": conclusion,
                "details_url": details_url,
                "completed_at": github_time(completed_at) if completed_at else None,
                "output": output.model_dump(exclude_none=True) if output else None,
            }
        )
        data = await self._call("PATCH", f"/check-runs/{int(check_run_id)}", body)
        return CheckRun.model_validate(data)

    async def list_check_runs(self, ref: str, *, check_name: str | None = None) -> list[CheckRun]:
        """Check runs on commit ``ref`` (all apps'), optionally only those named so."""
        query = urlencode(_drop_none({"check_name": check_name, "per_page": 100}))
        items = await self._collect(
            f"/commits/{quote(ref, safe='/')}/check-runs?{query}", iterable_key="check_runs"
        )
        return [CheckRun.model_validate(item) for item in items]

    # -- comments and reactions -------------------------------------------------------

    async def list_comments(self, issue_number: int) -> list[IssueComment]:
        """Every comment on an issue or pull request (its conversation tab), oldest first."""
        items = await self._collect(f"/issues/{int(issue_number)}/comments?per_page=100")
        return [IssueComment.model_validate(item) for item in items]

    async def get_comment(self, comment_id: int) -> IssueComment | None:
        data = await self._call_or_none("GET", f"/issues/comments/{int(comment_id)}")
        return None if data is None else IssueComment.model_validate(data)

    async def create_comment(self, issue_number: int, body: str) -> IssueComment:
        data = await self._call(
            "POST", f"/issues/{int(issue_number)}/comments", {"body": body}, replay_safe=False
        )
        return IssueComment.model_validate(data)

    async def update_comment(self, comment_id: int, body: str) -> IssueComment:
        data = await self._call("PATCH", f"/issues/comments/{int(comment_id)}", {"body": body})
        return IssueComment.model_validate(data)

    async def find_marked_comment(self, issue_number: int, marker: str) -> IssueComment | None:
        """The oldest comment written by this App that carries the marker ``marker``.

        Only the App's own comments count: anyone can paste a marker into a comment, and
        gwi must neither trust nor (it could not anyway) edit someone else's.
        """
        login = await self._app.bot_login()
        for comment in await self.list_comments(issue_number):
            author = comment.user.login if comment.user is not None else None
            if author == login and has_marker(comment.body, marker):
                return comment
        return None

    async def upsert_marked_comment(
        self, issue_number: int, marker: str, body: str
    ) -> IssueComment:
        """Keep one comment per marker: edit it in place when present, else create it."""
        body = with_marker(body, marker)
        existing = await self.find_marked_comment(issue_number, marker)
        if existing is None:
            try:
                return await self.create_comment(issue_number, body)
            except GitHubError as exc:
                if exc.status is None or exc.status < 500:
                    raise  # no answer: the job's retry looks later; 4xx: nothing was made
                # GitHub may have made it before failing: adopt it rather than make a second.
                existing = await self.find_marked_comment(issue_number, marker)
                if existing is None:
                    return await self.create_comment(issue_number, body)
        if existing.body == body:
            return existing
        return await self.update_comment(existing.id, body)

    async def add_reaction(self, comment_id: int, content: ReactionContent = "eyes") -> Reaction:
        """React to a comment (👀 acknowledges a command). Reacting twice is harmless."""
        data = await self._call(
            "POST", f"/issues/comments/{int(comment_id)}/reactions", {"content": content}
        )
        return Reaction.model_validate(data)

    # -- labels -----------------------------------------------------------------------

    async def add_labels(self, issue_number: int, labels: Sequence[str]) -> list[Label]:
        """Add labels (GitHub creates unknown ones); returns the issue's labels after."""
        if not labels:
            raise ValueError("add_labels needs at least one label")
        data = await self._call(
            "POST", f"/issues/{int(issue_number)}/labels", {"labels": list(labels)}
        )
        return [Label.model_validate(item) for item in data]

    # -- git refs ---------------------------------------------------------------------

    async def get_ref(self, ref: str) -> GitRef | None:
        """Where ``heads/<branch>`` (or ``tags/<tag>``) points; None when it does not exist."""
        data = await self._call_or_none("GET", f"/git/ref/{_ref_path(ref)}")
        if data is None:
            return None
        return GitRef(ref=data["ref"], sha=data["object"]["sha"])
