"""The fake GitHub's server: routing each request to its operation, checking credentials, paths,
queries and bodies against the API description, injecting faults, recording every call."""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from tests.fake_github.checks import RequestChecks
from tests.fake_github.ops_apps import AppsOps
from tests.fake_github.ops_checks import ChecksOps
from tests.fake_github.ops_git import GitOps
from tests.fake_github.ops_issues import IssuesOps
from tests.fake_github.ops_oauth import OAuthOps
from tests.fake_github.ops_pulls import PullsOps
from tests.fake_github.ops_repos import ReposOps
from tests.fake_github.shapes import Shapes
from tests.fake_github.spec import DEFAULT_INSTALLATION_PERMISSIONS, DOCS, Operation, operations
from tests.fake_github.state import (
    Answer,
    Call,
    CheckRun,
    Comment,
    Context,
    Delivery,
    Fault,
    Installation,
    Pull,
    Reaction,
    Repo,
    Token,
    Violation,
    _public_key,
)


class FakeGitHub(RequestChecks, AppsOps, ReposOps, ChecksOps, IssuesOps, PullsOps, GitOps, OAuthOps,
                 Shapes):
    """In-memory GitHub. Seed with ``add_*``/``set_*``, inspect attributes, inject ``fault``s.

    A story, with the fixtures of ``tests/conftest.py``::

        async def test_status_comment(fake_github, github_app):
            fake_github.add_pull(GITHUB_REPO, number=7, head_sha="1" * 40)
            fake_github.set_collaborator(GITHUB_REPO, "maya", "maintain")
            fake_github.fault("issues/create-comment", status=502)          # once, then fine
            repo = github_app.repo(GITHUB_INSTALLATION_ID, GITHUB_REPO)
            await repo.upsert_marked_comment(7, "status", "queued")
            (comment,) = fake_github.comments_on(GITHUB_REPO, 7)
            assert comment.user == "gwi-test[bot]"
            assert [c.status for c in fake_github.calls_to("issues/create-comment")] == [502, 201]
    """

    def __init__(
        self,
        *,
        app_id: str,
        private_key_pem: str,
        app_slug: str = "gwi-test",
        api_prefix: str = "",
        token_lifetime: timedelta = timedelta(hours=1),
    ) -> None:
        self.public_key_pem = _public_key(private_key_pem)
        self.app_id = str(app_id)
        self.app_slug = app_slug
        self.bot_login = f"{app_slug}[bot]"
        self.api_prefix = api_prefix.rstrip("/")
        self.token_lifetime = token_lifetime
        self.base_url = ""  # set by the fixture once the server listens
        self.check_responses = True
        self.clock = lambda: datetime.now(UTC).replace(microsecond=0)

        self.installations: dict[int, Installation] = {}
        self.repos: dict[str, Repo] = {}  # lower-case full name
        self.pulls: dict[tuple[str, int], Pull] = {}
        self.comments: dict[int, Comment] = {}
        self.check_runs: dict[int, CheckRun] = {}
        self.reactions: list[Reaction] = []
        self.tokens: list[Token] = []
        self.deliveries: list[Delivery] = []
        self.redeliveries: list[int] = []
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, list[dict[str, Any]]] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.compares: dict[tuple[str, str, str], dict[str, Any]] = {}

        self.calls: list[Call] = []
        self.violations: list[Violation] = []
        self.auth_failures: list[str] = []  # 401s GitHub gives for expired/revoked tokens
        self.faults: dict[str, list[Fault]] = {}
        self.rate_limit_remaining = 5000

        self._ids = itertools.count(1001)
        self._closing = asyncio.Event()
        self._init_oauth()

    def add_installation(
        self, installation_id: int, account: str, permissions: dict[str, str] | None = None
    ) -> Installation:
        inst = Installation(
            installation_id, account, dict(permissions or DEFAULT_INSTALLATION_PERMISSIONS)
        )
        self.installations[installation_id] = inst
        return inst

    def add_repo(
        self,
        full_name: str,
        *,
        installation_id: int | None = None,
        default_branch: str = "main",
        private: bool = False,
        clone_url: str | None = None,
    ) -> Repo:
        owner, name = full_name.split("/")
        repo = Repo(
            id=next(self._ids),
            owner=owner,
            name=name,
            installation_id=installation_id,
            default_branch=default_branch,
            private=private,
            clone_url=clone_url or f"https://github.com/{full_name}.git",
        )
        self.repos[full_name.lower()] = repo
        if installation_id is not None:
            if installation_id not in self.installations:
                self.add_installation(installation_id, owner)
            self.installations[installation_id].repositories.add(full_name.lower())
        return repo

    def repo(self, full_name: str) -> Repo:
        return self.repos[full_name.lower()]

    def set_collaborator(self, full_name: str, login: str, role_name: str) -> None:
        """Give ``login`` a role (admin, maintain, write, triage, read or a custom name)."""
        self.repo(full_name).collaborators[login] = role_name

    def set_file(
        self, full_name: str, path: str, content: str | bytes, *, ref: str | None = None
    ) -> None:
        repo = self.repo(full_name)
        data = content.encode() if isinstance(content, str) else content
        repo.files.setdefault(ref or repo.default_branch, {})[path.strip("/")] = data

    def set_ref(self, full_name: str, ref: str, sha: str) -> None:
        self.repo(full_name).refs[ref.removeprefix("refs/")] = sha

    def add_pull(
        self,
        full_name: str,
        *,
        number: int | None = None,
        head_sha: str = "a" * 40,
        base_sha: str = "b" * 40,
        head_ref: str = "feature",
        base_ref: str = "main",
        title: str = "A change",
        user: str = "contributor",
        **extra: Any,
    ) -> Pull:
        key = full_name.lower()
        number = number or 1 + max((n for (r, n) in self.pulls if r == key), default=0)
        pull = Pull(key, number, title, user, head_ref, head_sha, base_ref, base_sha, **extra)
        self.pulls[(key, number)] = pull
        return pull

    def pull(self, full_name: str, number: int) -> Pull:
        return self.pulls[(full_name.lower(), number)]

    def add_comment(
        self, full_name: str, issue_number: int, body: str, *, user: str = "someone"
    ) -> Comment:
        now = self.clock()
        comment = Comment(next(self._ids), full_name.lower(), issue_number, body, user, now, now)
        self.comments[comment.id] = comment
        return comment

    def add_delivery(self, event: str, action: str | None = None, **extra: Any) -> Delivery:
        delivery = Delivery(
            id=next(self._ids),
            guid=extra.pop(
                "guid",
                str(uuid.uuid4()),
            ),
            event=event,
            action=action,
            delivered_at=extra.pop("delivered_at", self.clock()),
            **extra,
        )
        self.deliveries.append(delivery)
        return delivery

    def calls_to(self, operation_id: str) -> list[Call]:
        return [c for c in self.calls if c.operation_id == operation_id]

    def comments_on(self, full_name: str, issue_number: int) -> list[Comment]:
        key = full_name.lower()
        return sorted(
            (c for c in self.comments.values() if c.repo == key and c.issue_number == issue_number),
            key=lambda c: c.id,
        )

    def pop_violations(self) -> list[Violation]:
        """Take the recorded violations (a test that expects some asserts on them)."""
        taken, self.violations = self.violations, []
        return taken

    def fault(
        self,
        operation_id: str,
        *,
        status: int | None = None,
        times: int = 1,
        retry_after: float | None = None,
        reset_in: float | None = None,
        delay: float = 0.0,
        message: str | None = None,
        after_acting: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``operation_id`` misbehave (after validation).

        ``status`` 5xx answers a server error; 403 with ``retry_after`` a secondary rate limit;
        403 with ``reset_in`` an exhausted primary rate limit; 429 a plain rate limit;
        ``delay`` (seconds) holds the answer back to provoke a client timeout;
        ``after_acting`` carries the operation out first (a 502 from a proxy after GitHub
        created the comment), so that a retry would do it twice.
        """
        if operation_id not in {o.operation_id for o in operations()}:
            raise KeyError(f"unknown operation {operation_id!r}")
        queue = self.faults.setdefault(operation_id, [])
        queue.extend(Fault(status, retry_after, reset_in, delay, message, after_acting)
                     for _ in range(times))

    def expire_tokens(self, *, installation_id: int | None = None) -> None:
        """Revoke every minted token (of one installation): GitHub will answer them 401."""
        for token in self.tokens:
            if installation_id is None or token.installation_id == installation_id:
                token.revoked = True

    def make_app(self) -> web.Application:
        app = web.Application()
        self._oauth_routes(app)  # GitHub's web sign-in and GET /user: not in the description
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def close(self) -> None:
        """Release requests held by ``delay`` faults (called by the fixture at teardown)."""
        self._closing.set()

    def _violate(self, kind: str, request: web.Request, detail: str) -> None:
        self.violations.append(Violation(kind, request.method, request.path_qs, detail))

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        call = Call(
            method=request.method,
            path=request.path,
            operation_id=None,
            query=dict(request.query),
            json=None,
            headers={k.lower(): v for k, v in request.headers.items()},
        )
        self.calls.append(call)
        if raw:
            try:
                call.json = json.loads(raw)
            except ValueError:
                call.json = raw.decode(errors="replace")
        try:
            status, payload, headers = await self._dispatch(request, raw, call)
        except Answer as answer:
            if answer.violation:
                first_line = answer.message.splitlines()[0]
                self._violate(f"answered {answer.status} {first_line}", request, answer.violation)
            status = answer.status
            payload = {"message": answer.message, "documentation_url": DOCS}
            if answer.errors is not None:
                payload["errors"] = answer.errors
                payload["status"] = str(status)
            headers = answer.headers
        call.status = status
        headers = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(max(self.rate_limit_remaining, 0)),
            "x-ratelimit-reset": str(int(self.clock().timestamp()) + 3600),
            "x-ratelimit-resource": "core",
            **headers,
        }
        if payload is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(payload, status=status, headers=headers)

    def _match(self, request: web.Request) -> tuple[Operation, dict[str, str]]:
        raw_path = request.raw_path.split("?", 1)[0]
        if self.api_prefix:
            if not raw_path.startswith(self.api_prefix + "/"):
                raise Answer(404, "Not Found", violation="unknown route")
            raw_path = raw_path[len(self.api_prefix) :]
        path_known = False
        for op in operations():
            match = op.regex.match(raw_path)
            if match is None:
                continue
            path_known = True
            if op.method != request.method:
                continue
            values = {}
            for name, value in match.groupdict().items():
                param = op.path_params()[name]
                if not param.multi_segment and "/" in value:
                    break
                values[name] = unquote(value)
            else:
                return op, values
        detail = "method not allowed on a known path" if path_known else "no such operation"
        raise Answer(404, "Not Found", violation=f"unknown route ({detail})")

    async def _dispatch(
        self, request: web.Request, raw: bytes, call: Call
    ) -> tuple[int, Any, dict[str, str]]:
        op, raw_params = self._match(request)
        call.operation_id = op.operation_id
        if not request.headers.get("User-Agent"):
            raise Answer(
                403,
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header",
                violation="missing User-Agent",
            )
        accept = request.headers.get("Accept", "")
        if accept and "json" not in accept and "*/*" not in accept and "vnd.github" not in accept:
            raise Answer(415, f"Unsupported 'Accept' header: {accept}", violation="bad Accept")

        token = self._authenticate(request, op, raw_params)
        params = self._check_path_params(op, raw_params)
        query = self._check_query(request, op)
        body = self._check_body(request, op, raw)

        repo = None
        if "owner" in params and "repo" in params:
            repo = self.repos.get(f"{params['owner']}/{params['repo']}".lower())
            if repo is None:
                raise Answer(404, "Not Found")
            if token is not None:
                self._check_scope(op, token, repo)

        fault = self._take_fault(op.operation_id)
        if fault is not None:
            call.fault = fault
            if fault.delay:
                try:
                    await asyncio.wait_for(self._closing.wait(), fault.delay)
                except TimeoutError:
                    pass
            if fault.status is not None and not fault.after_acting:
                raise self._fault_answer(fault)

        ctx = Context(op, request, params, query, body, token, repo)
        handler = getattr(self, "_op_" + op.operation_id.replace("/", "_").replace("-", "_"))
        status, payload, headers = handler(ctx)
        if fault is not None and fault.after_acting and fault.status is not None:
            raise self._fault_answer(fault)
        if self.check_responses:
            self._check_response(request, op, status, payload)
        return status, payload, headers

    def _take_fault(self, operation_id: str) -> Fault | None:
        queue = self.faults.get(operation_id)
        return queue.pop(0) if queue else None

    def _fault_answer(self, fault: Fault) -> Answer:
        assert fault.status is not None
        headers: dict[str, str] = {}
        message = fault.message
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.reset_in is not None:
            headers["x-ratelimit-remaining"] = "0"
            headers["x-ratelimit-reset"] = str(int(self.clock().timestamp() + fault.reset_in))
            message = message or "API rate limit exceeded for installation."
        if fault.status == 403 and message is None:
            message = (
                "You have exceeded a secondary rate limit. "
                "Please wait a few minutes before you try again."
            )
        if fault.status == 429 and message is None:
            message = "Too many requests"
        return Answer(
            fault.status,
            message
            or {500: "Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}.get(
                fault.status, "Error"
            ),
            headers=headers,
        )
