"""The one fake GitHub: a local REST server whose every request is checked against GitHub's OpenAPI.

Tests reach it through the ``fake_github`` fixture (``tests/conftest.py``). It keeps the state
tests seed and inspect (repositories, pull requests, collaborators, comments, check runs with
their history, reactions, labels, installations and the tokens it minted, webhook deliveries),
records every call, and answers as GitHub would. Anything GitHub would refuse — an unknown
route, a body that breaks the operation's schema, a missing or wrong credential, a token used
beyond its repository or permissions — is recorded as a *violation*, answered with GitHub's
status, and fails the test at teardown unless the test consumes it with ``pop_violations()``.

Responses are built from the OpenAPI description's own examples with the fake's state laid
over them, and are themselves checked loosely against the response schemas (missing required
fields and nulls tolerated: the examples predate some fields).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import itertools
import json
import re
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt as pyjwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path(__file__).resolve().parent / "fixtures" / "github" / "rest-api-subset.json"
SPEC_URI = "urn:gwi:github-rest-api-subset"
DOCS = "https://docs.github.com/rest"
NOT_IN_INSTALLATION = (
    "There is at least one repository that does not exist or is not accessible "
    "to the parent installation."
)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# The permission each operation needs from an installation token: any one of the
# alternatives will do (GitHub accepts issues or pull_requests for comments on a PR).
OPERATION_PERMISSIONS: dict[str, tuple[tuple[str, str], ...]] = {
    "repos/get": (("metadata", "read"),),
    "repos/get-collaborator-permission-level": (("metadata", "read"),),
    "repos/get-content": (("contents", "read"),),
    "repos/compare-commits": (("contents", "read"),),
    "checks/create": (("checks", "write"),),
    "checks/update": (("checks", "write"),),
    "checks/get": (("checks", "read"),),
    "checks/list-for-ref": (("checks", "read"),),
    "git/create-blob": (("contents", "write"),),
    "git/create-tree": (("contents", "write"),),
    "git/create-commit": (("contents", "write"),),
    "git/create-ref": (("contents", "write"),),
    "git/update-ref": (("contents", "write"),),
    "git/get-commit": (("contents", "read"),),
    "git/get-tree": (("contents", "read"),),
    "git/get-ref": (("contents", "read"),),
    "issues/list-comments": (("issues", "read"), ("pull_requests", "read")),
    "issues/get-comment": (("issues", "read"), ("pull_requests", "read")),
    "issues/create-comment": (("issues", "write"), ("pull_requests", "write")),
    "issues/update-comment": (("issues", "write"), ("pull_requests", "write")),
    "issues/add-labels": (("issues", "write"), ("pull_requests", "write")),
    "issues/remove-label": (("issues", "write"), ("pull_requests", "write")),
    "reactions/create-for-issue-comment": (("issues", "write"), ("pull_requests", "write")),
    "pulls/get": (("pull_requests", "read"),),
    "pulls/list": (("pull_requests", "read"),),
    "pulls/list-files": (("pull_requests", "read"),),
    "pulls/list-commits": (("pull_requests", "read"),),
    "pulls/update": (("pull_requests", "write"),),
    "pulls/create-review": (("pull_requests", "write"),),
}
# Authenticated as the App itself (a JWT), not as an installation.
JWT_OPERATIONS = {
    "apps/get-authenticated",
    "apps/list-webhook-deliveries",
    "apps/get-webhook-delivery",
    "apps/redeliver-webhook-delivery",
    "apps/create-installation-access-token",
    "apps/get-repo-installation",
}
DEFAULT_INSTALLATION_PERMISSIONS = {
    "metadata": "read",
    "contents": "write",
    "checks": "write",
    "issues": "write",
    "pull_requests": "write",
}
LEVELS = {"read": 1, "write": 2, "admin": 3}
ROLE_TO_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}


# -- the OpenAPI description ---------------------------------------------------------------


@functools.cache
def load_spec() -> dict[str, Any]:
    return json.loads(SPEC_PATH.read_text())


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(SPEC_URI, Resource(load_spec(), specification=DRAFT4))


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@functools.cache
def _validator(pointer: str, write: bool) -> Any:
    cls = OAS30WriteValidator if write else OAS30ReadValidator
    return cls(
        {"$ref": f"{SPEC_URI}#{pointer}"}, registry=_registry(), format_checker=oas30_format_checker
    )


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    spec = load_spec()
    while "$ref" in node:
        target: Any = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def example(name: str) -> Any:
    """A deep copy of one of the description's response examples."""
    return copy.deepcopy(load_spec()["components"]["examples"][name]["value"])


@dataclass(frozen=True)
class Param:
    name: str
    location: str
    required: bool
    schema: dict[str, Any]
    multi_segment: bool


@dataclass(frozen=True)
class Operation:
    operation_id: str
    method: str
    template: str
    regex: re.Pattern[str]
    params: tuple[Param, ...]
    body_pointer: str | None
    body_required: bool
    responses: dict[str, str | None]  # status -> pointer of its JSON schema (None: no body)

    def path_params(self) -> dict[str, Param]:
        return {p.name: p for p in self.params if p.location == "path"}

    def query_params(self) -> dict[str, Param]:
        return {p.name: p for p in self.params if p.location == "query"}


@functools.cache
def operations() -> tuple[Operation, ...]:
    ops = []
    for template, item in load_spec()["paths"].items():
        shared = item.get("parameters", [])
        for method, op in item.items():
            if method == "parameters":
                continue
            params = tuple(
                Param(
                    p["name"],
                    p["in"],
                    bool(p.get("required", False)),
                    p.get("schema", {}),
                    bool(p.get("x-multi-segment", False)),
                )
                for p in (_resolve(x) for x in [*shared, *op.get("parameters", [])])
            )
            by_name = {p.name: p for p in params if p.location == "path"}

            def group(match: re.Match[str], by_name: dict[str, Param] = by_name) -> str:
                name = match.group(1)
                body = ".+?" if by_name.get(name) and by_name[name].multi_segment else "[^/]+?"
                return f"(?P<{name}>{body})"

            regex = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", group, re.escape(template)) + "$")
            body_pointer = None
            body_required = False
            if "requestBody" in op:
                body = _resolve(op["requestBody"])
                if "application/json" in body.get("content", {}):
                    body_pointer = _pointer(
                        "paths",
                        template,
                        method,
                        "requestBody",
                        "content",
                        "application/json",
                        "schema",
                    )
                body_required = bool(body.get("required", False))
            responses: dict[str, str | None] = {}
            for status, response in op["responses"].items():
                resolved = _resolve(response)
                if "application/json" in resolved.get("content", {}) and "$ref" not in response:
                    responses[status] = _pointer(
                        "paths",
                        template,
                        method,
                        "responses",
                        status,
                        "content",
                        "application/json",
                        "schema",
                    )
                elif "application/json" in resolved.get("content", {}):
                    name = response["$ref"].split("/")[-1]
                    responses[status] = _pointer(
                        "components", "responses", name, "content", "application/json", "schema"
                    )
                else:
                    responses[status] = None
            ops.append(
                Operation(
                    op["operationId"],
                    method.upper(),
                    template,
                    regex,
                    params,
                    body_pointer,
                    body_required,
                    responses,
                )
            )
    # Literal segments beat parameters: try templates with more fixed text first.
    ops.sort(key=lambda o: -len(re.sub(r"\{\w+\}", "", o.template)))
    return tuple(ops)


def _tolerable(error: Any) -> bool:
    """Loose response checking: a missing required field or a null is tolerated (GitHub's
    examples predate some fields); in a oneOf/anyOf, one tolerable branch is enough."""
    if error.validator in ("oneOf", "anyOf") and error.context:
        branches: dict[Any, list[Any]] = {}
        for sub in error.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        return any(all(_tolerable(sub) for sub in subs) for subs in branches.values())
    if error.validator == "oneOf" and not error.context and isinstance(error.instance, list):
        # GitHub's contents answer discriminates on "type", which an array (a directory
        # listing) lacks; the validator then cannot pick the array branch.
        return True
    return error.validator == "required" or error.instance is None


def schema_errors(pointer: str, instance: Any, *, write: bool) -> list[str]:
    validator = _validator(pointer, write)
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(body)'}: {e.message}"
        for e in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.path)))
    ]


# -- state -----------------------------------------------------------------------------------


@dataclass
class Violation:
    kind: str
    method: str
    path: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.method} {self.path}: {self.detail}"


@dataclass
class Call:
    method: str
    path: str
    operation_id: str | None
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    status: int = 0
    fault: Fault | None = None


@dataclass
class Fault:
    """One injected misbehaviour. ``status`` None with a ``delay`` answers normally, late."""

    status: int | None = None
    retry_after: float | None = None
    reset_in: float | None = None  # primary rate limit: x-ratelimit-remaining 0, reset then
    delay: float = 0.0
    message: str | None = None


@dataclass
class Installation:
    id: int
    account: str
    permissions: dict[str, str]
    repositories: set[str] = field(default_factory=set)  # lower-case full names


@dataclass
class Token:
    token: str
    installation_id: int
    repositories: set[str] | None  # lower-case full names; None: the whole installation
    permissions: dict[str, str]
    expires_at: datetime
    revoked: bool = False


@dataclass
class Repo:
    id: int
    owner: str
    name: str
    installation_id: int | None
    default_branch: str
    private: bool
    clone_url: str
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # ref -> path -> bytes
    refs: dict[str, str] = field(default_factory=dict)  # "heads/main" -> sha
    collaborators: dict[str, str] = field(default_factory=dict)  # login -> role_name

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass
class Pull:
    repo: str
    number: int
    title: str
    user: str
    head_ref: str
    head_sha: str
    base_ref: str
    base_sha: str
    state: str = "open"
    draft: bool = False
    maintainer_can_modify: bool = False
    head_repo: str | None = None  # fork's full name; None: same repository
    merged: bool = False
    mergeable: bool | None = True
    body: str = ""
    labels: list[str] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)
    reviews: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Comment:
    id: int
    repo: str
    issue_number: int
    body: str
    user: str
    created_at: datetime
    updated_at: datetime
    via_app: bool = False
    history: list[str] = field(default_factory=list)  # earlier bodies, oldest first


@dataclass
class CheckRun:
    id: int
    repo: str
    name: str
    head_sha: str
    status: str
    conclusion: str | None
    started_at: datetime
    completed_at: datetime | None
    output: dict[str, Any]
    details_url: str | None
    external_id: str | None
    history: list[dict[str, Any]] = field(default_factory=list)  # every request body, in order


@dataclass
class Reaction:
    id: int
    comment_id: int
    content: str
    user: str


@dataclass
class Delivery:
    id: int
    guid: str
    event: str
    action: str | None
    delivered_at: datetime
    status_code: int = 200
    redelivery: bool = False
    installation_id: int | None = None
    repository_id: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)


class Answer(Exception):
    """Short-circuits a handler with GitHub's answer (an error status, usually)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[Any] | None = None,
        headers: dict[str, str] | None = None,
        violation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}
        self.violation = violation


@dataclass
class Context:
    op: Operation
    request: web.Request
    params: dict[str, Any]
    query: dict[str, str]
    body: Any
    token: Token | None
    repo: Repo | None


@functools.cache
def _public_key(private_key_pem: str) -> bytes:
    """What GitHub keeps of an App's key: the public half, to verify the App's JWTs."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def _git_sha(kind: str, payload: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(payload)}\0".encode() + payload).hexdigest()


# -- the fake --------------------------------------------------------------------------------


class FakeGitHub:
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

    # -- seeding ---------------------------------------------------------------------------

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

    # -- inspecting --------------------------------------------------------------------------

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

    # -- faults ------------------------------------------------------------------------------

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
    ) -> None:
        """Make the next ``times`` calls of ``operation_id`` misbehave (after validation).

        ``status`` 5xx answers a server error; 403 with ``retry_after`` a secondary rate limit;
        403 with ``reset_in`` an exhausted primary rate limit; 429 a plain rate limit;
        ``delay`` (seconds) holds the answer back to provoke a client timeout.
        """
        if operation_id not in {o.operation_id for o in operations()}:
            raise KeyError(f"unknown operation {operation_id!r}")
        queue = self.faults.setdefault(operation_id, [])
        queue.extend(Fault(status, retry_after, reset_in, delay, message) for _ in range(times))

    def expire_tokens(self, *, installation_id: int | None = None) -> None:
        """Revoke every minted token (of one installation): GitHub will answer them 401."""
        for token in self.tokens:
            if installation_id is None or token.installation_id == installation_id:
                token.revoked = True

    # -- the server --------------------------------------------------------------------------

    def make_app(self) -> web.Application:
        app = web.Application()
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
            if fault.status is not None:
                raise self._fault_answer(fault)

        ctx = Context(op, request, params, query, body, token, repo)
        handler = getattr(self, "_op_" + op.operation_id.replace("/", "_").replace("-", "_"))
        status, payload, headers = handler(ctx)
        if self.check_responses:
            self._check_response(request, op, status, payload)
        return status, payload, headers

    # -- checks ------------------------------------------------------------------------------

    def _authenticate(
        self, request: web.Request, op: Operation, raw_params: dict[str, str]
    ) -> Token | None:
        header = request.headers.get("Authorization", "")
        scheme, _, credential = header.partition(" ")
        scheme = scheme.lower()
        credential = credential.strip()
        if not header:
            raise Answer(401, "Requires authentication", violation="no Authorization header")
        if op.operation_id in JWT_OPERATIONS:
            if scheme != "bearer":
                raise Answer(
                    401,
                    "A JSON web token could not be decoded",
                    violation=f"{op.operation_id} needs the App JWT",
                )
            self._check_jwt(credential)
            return None
        if scheme not in {"token", "bearer"}:
            raise Answer(
                401, "Bad credentials", violation=f"unknown Authorization scheme {scheme!r}"
            )
        if credential.count(".") == 2:
            if op.operation_id == "rate-limit/get":
                self._check_jwt(credential)
                return None
            raise Answer(
                401,
                "A JSON web token could not be decoded",
                violation=f"{op.operation_id} needs an installation token, got the App JWT",
            )
        token = next((t for t in self.tokens if t.token == credential), None)
        if token is None:
            raise Answer(401, "Bad credentials", violation="a token this GitHub never minted")
        if token.revoked or token.expires_at <= self.clock():
            self.auth_failures.append(f"{request.method} {request.path}")
            raise Answer(401, "Bad credentials")
        return token

    def _check_jwt(self, credential: str) -> None:
        try:
            claims = pyjwt.decode(
                credential,
                self.public_key_pem,
                algorithms=["RS256"],
                options={"require": ["iat", "exp", "iss"], "verify_iss": False},
            )
        except pyjwt.PyJWTError as exc:
            raise Answer(
                401, "A JSON web token could not be decoded", violation=f"bad JWT: {exc}"
            ) from None
        now = self.clock().timestamp()
        if str(claims["iss"]) != self.app_id:
            raise Answer(
                401, "Integration not found", violation=f"JWT iss {claims['iss']!r} is not the App"
            )
        if claims["exp"] - now > 600 + 5:
            raise Answer(
                401,
                "'Expiration time' claim ('exp') is too far in the future",
                violation="JWT lives longer than GitHub's 10 minutes",
            )

    def _check_path_params(self, op: Operation, raw: dict[str, str]) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for name, value in raw.items():
            if op.path_params()[name].schema.get("type") == "integer":
                if not value.isdigit():
                    raise Answer(
                        404,
                        "Not Found",
                        violation=f"path parameter {name}={value!r} is not an integer",
                    )
                params[name] = int(value)
            else:
                params[name] = value
        return params

    def _check_query(self, request: web.Request, op: Operation) -> dict[str, str]:
        known = op.query_params()
        query: dict[str, str] = {}
        for name, value in request.query.items():
            param = known.get(name)
            if param is None:
                raise Answer(
                    422,
                    f"Unknown query parameter {name!r}",
                    violation=f"{op.operation_id} has no query parameter {name!r}",
                )
            kind = param.schema.get("type")
            if kind == "integer" and not value.isdigit():
                raise Answer(
                    422,
                    f"{name} must be an integer",
                    violation=f"query {name}={value!r} is not an integer",
                )
            if "enum" in param.schema and value not in param.schema["enum"]:
                raise Answer(
                    422,
                    f"{name} is not one of {param.schema['enum']}",
                    violation=f"query {name}={value!r} not in enum",
                )
            query[name] = value
        return query

    def _check_body(self, request: web.Request, op: Operation, raw: bytes) -> Any:
        if not raw:
            if op.body_pointer is not None and op.body_required:
                raise Answer(
                    400, "Problems parsing JSON", violation=f"{op.operation_id} needs a JSON body"
                )
            return None
        if op.body_pointer is None:
            raise Answer(
                400, "This endpoint takes no body", violation=f"{op.operation_id} sent a body"
            )
        if "json" not in request.headers.get("Content-Type", ""):
            raise Answer(415, "Unsupported Media Type", violation="body is not declared as JSON")
        try:
            body = json.loads(raw)
        except ValueError:
            raise Answer(400, "Problems parsing JSON", violation="body is not JSON") from None
        errors = schema_errors(op.body_pointer, body, write=True)
        if errors:
            raise Answer(
                422,
                "Invalid request.\n\n" + "\n".join(errors),
                errors=[
                    {"resource": op.operation_id, "code": "invalid", "message": e} for e in errors
                ],
                violation=f"body breaks {op.operation_id} schema: " + "; ".join(errors),
            )
        return body

    def _check_scope(self, op: Operation, token: Token, repo: Repo) -> None:
        if token.repositories is not None and repo.full_name.lower() not in token.repositories:
            raise Answer(
                404,
                "Not Found",
                violation=f"token scoped to {sorted(token.repositories)} used on {repo.full_name}",
            )
        if repo.installation_id != token.installation_id:
            raise Answer(
                404,
                "Not Found",
                violation=f"installation {token.installation_id} is not on {repo.full_name}",
            )
        needs = OPERATION_PERMISSIONS.get(op.operation_id)
        if needs and not any(
            LEVELS.get(token.permissions.get(perm, ""), 0) >= LEVELS[level] for perm, level in needs
        ):
            raise Answer(
                403,
                "Resource not accessible by integration",
                violation=(
                    f"{op.operation_id} needs {' or '.join(f'{p}:{lv}' for p, lv in needs)}; "
                    f"token has {token.permissions}"
                ),
            )

    def _check_response(
        self, request: web.Request, op: Operation, status: int, payload: Any
    ) -> None:
        pointer = op.responses.get(str(status))
        if str(status) not in op.responses:
            self._violate(
                "fake answered an undocumented status", request, f"{status} for {op.operation_id}"
            )
            return
        if pointer is None or payload is None:
            return
        loose = [e for e in _validator(pointer, False).iter_errors(payload) if not _tolerable(e)]
        for error in loose[:3]:
            self._violate(
                "fake response drifts from the schema",
                request,
                f"{list(error.absolute_path)}: {error.message}",
            )

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

    # -- shaping -----------------------------------------------------------------------------

    @staticmethod
    def user_id(login: str) -> int:
        """The account id GitHub gives ``login`` (stable, so payloads can carry the same one)."""
        return int(hashlib.sha1(login.encode()).hexdigest()[:8], 16)

    def _user(self, login: str) -> dict[str, Any]:
        user = example("issue-comment")["user"]
        is_bot = login.endswith("[bot]")
        user.update(
            login=login,
            id=self.user_id(login),
            type="Bot" if is_bot else "User",
            html_url=f"https://github.com/{login}",
            url=f"https://api.github.com/users/{login}",
        )
        return user

    def _repo_json(
        self, repo: Repo, *, base: str = "full-repository-default-response"
    ) -> dict[str, Any]:
        data = example(base)
        data.update(
            id=repo.id,
            name=repo.name,
            full_name=repo.full_name,
            private=repo.private,
            visibility="private" if repo.private else "public",
            default_branch=repo.default_branch,
            clone_url=repo.clone_url,
            html_url=f"https://github.com/{repo.full_name}",
            url=f"{self.base_url}/repos/{repo.full_name}",
            owner=self._user(repo.owner),
            fork=False,
            language=data.get("language"),
        )
        return data

    def _nested_repo(self, full_name: str) -> dict[str, Any]:
        repo = self.repos.get(full_name.lower())
        if repo is None:  # a fork the fake was not told about: make one up
            owner, name = full_name.split("/")
            repo = Repo(
                next(self._ids),
                owner,
                name,
                None,
                "main",
                False,
                f"https://github.com/{full_name}.git",
            )
        data = example("pull-request")["head"]["repo"]
        data.update(
            id=repo.id,
            name=repo.name,
            full_name=repo.full_name,
            owner=self._user(repo.owner),
            private=repo.private,
            clone_url=repo.clone_url,
            default_branch=repo.default_branch,
            html_url=f"https://github.com/{repo.full_name}",
            fork=full_name.lower() != repo.full_name.lower(),
        )
        return data

    def _pull_json(self, pull: Pull, *, simple: bool = False) -> dict[str, Any]:
        data = example("pull-request-simple-items")[0] if simple else example("pull-request")
        repo = self.repos[pull.repo]
        head_repo = pull.head_repo or repo.full_name
        html = f"https://github.com/{repo.full_name}/pull/{pull.number}"
        data.update(
            id=int(f"9{repo.id}{pull.number}"),
            number=pull.number,
            state=pull.state,
            title=pull.title,
            body=pull.body,
            draft=pull.draft,
            user=self._user(pull.user),
            html_url=html,
            url=f"{self.base_url}/repos/{repo.full_name}/pulls/{pull.number}",
            labels=[self._label(name) for name in pull.labels],
            locked=False,
        )
        data["head"].update(
            ref=pull.head_ref,
            sha=pull.head_sha,
            label=f"{head_repo.split('/')[0]}:{pull.head_ref}",
            repo=self._nested_repo(head_repo),
            user=self._user(head_repo.split("/")[0]),
        )
        data["base"].update(
            ref=pull.base_ref,
            sha=pull.base_sha,
            label=f"{repo.owner}:{pull.base_ref}",
            repo=self._nested_repo(repo.full_name),
            user=self._user(repo.owner),
        )
        if not simple:
            data.update(
                merged=pull.merged,
                mergeable=pull.mergeable,
                maintainer_can_modify=pull.maintainer_can_modify,
                commits=len(pull.commits),
                changed_files=len(pull.files),
            )
        return data

    def _label(self, name: str) -> dict[str, Any]:
        label = example("label-items")[0]
        label.update(
            name=name, id=int(hashlib.sha1(name.encode()).hexdigest()[:8], 16), default=False
        )
        return label

    def _comment_json(self, comment: Comment) -> dict[str, Any]:
        data = example("issue-comment")
        repo = self.repos[comment.repo]
        data.update(
            id=comment.id,
            body=comment.body,
            user=self._user(comment.user),
            created_at=_ts(comment.created_at),
            updated_at=_ts(comment.updated_at),
            html_url=(
                f"https://github.com/{repo.full_name}/pull/{comment.issue_number}"
                f"#issuecomment-{comment.id}"
            ),
            url=f"{self.base_url}/repos/{repo.full_name}/issues/comments/{comment.id}",
            issue_url=f"{self.base_url}/repos/{repo.full_name}/issues/{comment.issue_number}",
            author_association="NONE" if comment.via_app else data["author_association"],
        )
        if comment.via_app:
            app = example("integration")
            app.update(id=int(self.app_id) if self.app_id.isdigit() else 1, slug=self.app_slug)
            data["performed_via_github_app"] = app
        return data

    def _check_run_json(self, run: CheckRun) -> dict[str, Any]:
        data = example("check-run")
        repo = self.repos[run.repo]
        data.update(
            id=run.id,
            name=run.name,
            head_sha=run.head_sha,
            status=run.status,
            conclusion=run.conclusion,
            started_at=_ts(run.started_at),
            completed_at=_ts(run.completed_at) if run.completed_at else None,
            details_url=run.details_url,
            external_id=run.external_id,
            url=f"{self.base_url}/repos/{repo.full_name}/check-runs/{run.id}",
            html_url=f"https://github.com/{repo.full_name}/runs/{run.id}",
        )
        output = {"title": None, "summary": None, "text": None, **run.output}
        data["output"] = {
            **{k: output[k] for k in ("title", "summary", "text")},
            "annotations_count": 0,
            "annotations_url": f"{data['url']}/annotations",
        }
        data["app"].update(slug=self.app_slug)
        data["pull_requests"] = []
        return data

    def _paginate(self, ctx: Context, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
        per_page = int(ctx.query.get("per_page", "30"))
        page = int(ctx.query.get("page", "1"))
        if not 1 <= per_page <= 100:
            raise Answer(
                422, "per_page must be between 1 and 100", violation=f"per_page={per_page}"
            )
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            next_url = ctx.request.url.update_query(page=str(page + 1))
            headers["Link"] = f'<{next_url}>; rel="next"'
        return chunk, headers

    # -- operations: the App -----------------------------------------------------------------

    def _op_apps_get_authenticated(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        data = example("integration")
        data.update(
            slug=self.app_slug,
            name=self.app_slug,
            id=int(self.app_id) if self.app_id.isdigit() else 1,
        )
        return 200, data, {}

    def _op_apps_create_installation_access_token(
        self, ctx: Context
    ) -> tuple[int, Any, dict[str, str]]:
        inst = self.installations.get(ctx.params["installation_id"])
        if inst is None:
            raise Answer(404, "Not Found")
        body = ctx.body or {}
        repos: set[str] | None = None
        if "repositories" in body:
            repos = set()
            for name in body["repositories"]:
                full = f"{inst.account}/{name}".lower() if "/" not in name else name.lower()
                if full not in inst.repositories:
                    raise Answer(
                        422,
                        NOT_IN_INSTALLATION,
                        violation=f"token asked for {name!r}, not in installation {inst.id}",
                    )
                repos.add(full)
        if "repository_ids" in body:
            repos = repos or set()
            for repo_id in body["repository_ids"]:
                match = [
                    r
                    for r in self.repos.values()
                    if r.id == repo_id and r.full_name.lower() in inst.repositories
                ]
                if not match:
                    raise Answer(
                        422,
                        NOT_IN_INSTALLATION,
                        violation=f"repository id {repo_id}",
                    )
                repos.add(match[0].full_name.lower())
        permissions = dict(inst.permissions)
        if "permissions" in body:
            for perm, level in body["permissions"].items():
                if LEVELS.get(level, 0) > LEVELS.get(inst.permissions.get(perm, ""), 0):
                    raise Answer(
                        422,
                        "The permissions requested are not granted to this installation.",
                        violation=(
                            f"asked {perm}:{level}, installation has {inst.permissions.get(perm)}"
                        ),
                    )
            permissions = dict(body["permissions"])
            permissions.setdefault("metadata", "read")
        token = Token(
            token="ghs_" + secrets.token_urlsafe(27)[:36],
            installation_id=inst.id,
            repositories=repos,
            permissions=permissions,
            expires_at=self.clock() + self.token_lifetime,
        )
        self.tokens.append(token)
        data = example("installation-token")
        data.update(
            token=token.token,
            expires_at=_ts(token.expires_at),
            permissions=permissions,
            repository_selection="selected" if repos is not None else "all",
            repositories=[
                self._repo_json(self.repos[r], base="full-repository-default-response")
                for r in sorted(repos or ())
            ],
        )
        for item in data["repositories"]:  # the token answer nests the simpler repository shape
            for key in (
                "organization",
                "parent",
                "source",
                "template_repository",
                "network_count",
                "subscribers_count",
            ):
                item.pop(key, None)
        return 201, data, {}

    def _op_apps_get_repo_installation(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        repo = ctx.repo
        assert repo is not None
        if repo.installation_id is None:
            raise Answer(404, "Not Found")
        inst = self.installations[repo.installation_id]
        data = example("installation")
        data.update(id=inst.id, permissions=inst.permissions, app_slug=self.app_slug)
        data["account"].update(login=inst.account)
        return 200, data, {}

    def _delivery_json(self, d: Delivery, *, full: bool = False) -> dict[str, Any]:
        data = example("hook-delivery" if full else "hook-delivery-items")
        if not full:
            data = data[0]
        data.update(
            id=d.id,
            guid=d.guid,
            delivered_at=_ts(d.delivered_at),
            redelivery=d.redelivery,
            status="OK" if d.status_code < 400 else "Invalid HTTP Response: " + str(d.status_code),
            status_code=d.status_code,
            event=d.event,
            action=d.action,
            installation_id=d.installation_id,
            repository_id=d.repository_id,
            throttled_at=None,
        )
        if full:
            data["request"]["headers"].update(
                {"X-GitHub-Delivery": d.guid, "X-GitHub-Event": d.event}
            )
            data["request"]["payload"] = d.payload
        return data

    def _op_apps_list_webhook_deliveries(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        items = sorted(self.deliveries, key=lambda d: d.id, reverse=True)
        if "status" in ctx.query:
            ok = ctx.query["status"] == "success"
            items = [d for d in items if (d.status_code < 400) == ok]
        per_page = int(ctx.query.get("per_page", "30"))
        start = 0
        if "cursor" in ctx.query:
            start = next(
                (i for i, d in enumerate(items) if str(d.id) == ctx.query["cursor"]), len(items)
            )
        chunk = items[start : start + per_page]
        headers = {}
        if start + per_page < len(items):
            cursor = str(items[start + per_page].id)
            headers["Link"] = f'<{ctx.request.url.update_query(cursor=cursor)}>; rel="next"'
        return 200, [self._delivery_json(d) for d in chunk], headers

    def _find_delivery(self, ctx: Context) -> Delivery:
        found = next((d for d in self.deliveries if d.id == ctx.params["delivery_id"]), None)
        if found is None:
            raise Answer(404, "Not Found")
        return found

    def _op_apps_get_webhook_delivery(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        return 200, self._delivery_json(self._find_delivery(ctx), full=True), {}

    def _op_apps_redeliver_webhook_delivery(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        original = self._find_delivery(ctx)
        self.redeliveries.append(original.id)
        self.add_delivery(
            original.event,
            original.action,
            guid=original.guid,
            redelivery=True,
            installation_id=original.installation_id,
            repository_id=original.repository_id,
            payload=original.payload,
        )
        return 202, {}, {}

    def _op_rate_limit_get(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        data = example("rate-limit-overview")
        data["rate"]["remaining"] = self.rate_limit_remaining
        data["resources"]["core"]["remaining"] = self.rate_limit_remaining
        return 200, data, {}

    # -- operations: repository --------------------------------------------------------------

    def _op_repos_get(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        return 200, self._repo_json(ctx.repo), {}

    def _op_repos_get_collaborator_permission_level(
        self, ctx: Context
    ) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        login = ctx.params["username"]
        role = ctx.repo.collaborators.get(login)
        if role is None:
            role = "read" if not ctx.repo.private else "none"
        data = example("repository-collaborator-permission-response-if-user-has-admin-permissions")
        data.update(
            role_name=role, permission=ROLE_TO_PERMISSION.get(role, "read"), user=self._user(login)
        )
        return 200, data, {}

    def _op_repos_get_content(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        repo = ctx.repo
        assert repo is not None
        ref = ctx.query.get("ref", repo.default_branch)
        ref = ref.removeprefix("refs/heads/")
        files = repo.files.get(ref)
        path = ctx.params["path"].strip("/")
        if files is None or path not in files:
            inside = sorted(p for p in (files or {}) if p.startswith(path + "/"))
            if inside:  # a directory: GitHub answers a list of its entries
                names = sorted({p[len(path) + 1 :].split("/")[0] for p in inside})
                entries = []
                for name in names:
                    entry = example("content-file-response-if-content-is-a-directory")[0]
                    sub = f"{path}/{name}"
                    is_file = sub in files
                    blob = (
                        _git_sha("blob", files[sub]) if is_file else _git_sha("tree", sub.encode())
                    )
                    entry.update(
                        type="file" if is_file else "dir",
                        name=name,
                        path=sub,
                        sha=blob,
                        size=len(files[sub]) if is_file else 0,
                    )
                    entries.append(entry)
                return 200, entries, {}
            raise Answer(404, "Not Found")
        content = files[path]
        data = example("content-file-response-if-content-is-a-file")
        encoded = base64.encodebytes(content).decode()
        data.update(
            name=path.rsplit("/", 1)[-1],
            path=path,
            size=len(content),
            sha=_git_sha("blob", content),
            content=encoded,
            encoding="base64",
        )
        return 200, data, {}

    def _op_repos_compare_commits(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        key = (
            ctx.repo.full_name.lower() if ctx.repo else "",
            ctx.params["base"],
            ctx.params["head"],
        )
        seeded = self.compares.get(key)
        if seeded is None:
            raise Answer(404, "Not Found")
        data = example("commit-comparison")
        data.update(seeded)
        return 200, data, {}

    # -- operations: checks ------------------------------------------------------------------

    def _op_checks_create(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        body = ctx.body
        now = self.clock()
        status = body.get("status", "queued")
        conclusion = body.get("conclusion")
        if conclusion is not None:
            status = "completed"
        if status == "completed" and conclusion is None:
            raise Answer(
                422,
                "Invalid request.\n\nNo conclusion given for a completed check run.",
                violation="completed check run without conclusion",
            )
        run = CheckRun(
            id=next(self._ids),
            repo=ctx.repo.full_name.lower(),
            name=body["name"],
            head_sha=body["head_sha"],
            status=status,
            conclusion=conclusion,
            started_at=datetime.fromisoformat(body["started_at"]) if "started_at" in body else now,
            completed_at=(
                datetime.fromisoformat(body["completed_at"]) if "completed_at" in body else now
            )
            if status == "completed"
            else None,
            output=dict(body.get("output", {})),
            details_url=body.get("details_url"),
            external_id=body.get("external_id"),
            history=[copy.deepcopy(body)],
        )
        self.check_runs[run.id] = run
        return 201, self._check_run_json(run), {}

    def _find_check_run(self, ctx: Context) -> CheckRun:
        run = self.check_runs.get(ctx.params["check_run_id"])
        if run is None or ctx.repo is None or run.repo != ctx.repo.full_name.lower():
            raise Answer(404, "Not Found")
        return run

    def _op_checks_update(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        run = self._find_check_run(ctx)
        body = ctx.body
        run.history.append(copy.deepcopy(body))
        if "conclusion" in body:
            run.conclusion = body["conclusion"]
            run.status = "completed"
        elif "status" in body:
            if body["status"] == "completed" and run.conclusion is None:
                raise Answer(
                    422,
                    "Invalid request.\n\nNo conclusion given for a completed check run.",
                    violation="completed check run without conclusion",
                )
            run.status = body["status"]
        if run.status == "completed":
            run.completed_at = (
                datetime.fromisoformat(body["completed_at"])
                if "completed_at" in body
                else self.clock()
            )
        for key in ("name", "details_url", "external_id"):
            if key in body:
                setattr(run, key, body[key])
        if "output" in body:
            run.output.update(body["output"])
        return 200, self._check_run_json(run), {}

    def _op_checks_get(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        return 200, self._check_run_json(self._find_check_run(ctx)), {}

    def _op_checks_list_for_ref(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        ref = ctx.params["ref"]
        sha = ctx.repo.refs.get(f"heads/{ref}", ref)
        runs = [
            r
            for r in self.check_runs.values()
            if r.repo == ctx.repo.full_name.lower()
            and r.head_sha == sha
            and ("check_name" not in ctx.query or r.name == ctx.query["check_name"])
            and ("status" not in ctx.query or r.status == ctx.query["status"])
        ]
        chunk, headers = self._paginate(ctx, runs)
        return (
            200,
            {"total_count": len(runs), "check_runs": [self._check_run_json(r) for r in chunk]},
            headers,
        )

    # -- operations: comments, reactions, labels ---------------------------------------------

    def _author(self, ctx: Context) -> str:
        return self.bot_login if ctx.token is not None else "someone"

    def _issue_exists(self, ctx: Context) -> None:
        assert ctx.repo is not None
        if (ctx.repo.full_name.lower(), ctx.params["issue_number"]) not in self.pulls:
            raise Answer(404, "Not Found")

    def _op_issues_list_comments(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        self._issue_exists(ctx)
        comments = self.comments_on(ctx.repo.full_name, ctx.params["issue_number"])
        chunk, headers = self._paginate(ctx, comments)
        return 200, [self._comment_json(c) for c in chunk], headers

    def _op_issues_create_comment(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        self._issue_exists(ctx)
        if len(ctx.body["body"]) > 65536:
            raise Answer(
                422,
                "Validation Failed",
                errors=[
                    {
                        "resource": "IssueComment",
                        "code": "custom",
                        "field": "body",
                        "message": "body is too long (maximum is 65536 characters)",
                    }
                ],
                violation="comment longer than 65536",
            )
        now = self.clock()
        comment = Comment(
            next(self._ids),
            ctx.repo.full_name.lower(),
            ctx.params["issue_number"],
            ctx.body["body"],
            self._author(ctx),
            now,
            now,
            via_app=True,
        )
        self.comments[comment.id] = comment
        return 201, self._comment_json(comment), {}

    def _find_comment(self, ctx: Context) -> Comment:
        comment = self.comments.get(ctx.params["comment_id"])
        if comment is None or ctx.repo is None or comment.repo != ctx.repo.full_name.lower():
            raise Answer(404, "Not Found")
        return comment

    def _op_issues_get_comment(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        return 200, self._comment_json(self._find_comment(ctx)), {}

    def _op_issues_update_comment(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        comment = self._find_comment(ctx)
        if comment.user != self._author(ctx):
            raise Answer(
                403,
                "Resource not accessible by integration",
                violation=f"edited comment {comment.id} by {comment.user}",
            )
        comment.history.append(comment.body)
        comment.body = ctx.body["body"]
        comment.updated_at = self.clock()
        return 200, self._comment_json(comment), {}

    def _op_reactions_create_for_issue_comment(
        self, ctx: Context
    ) -> tuple[int, Any, dict[str, str]]:
        comment = self._find_comment(ctx)
        author = self._author(ctx)
        content = ctx.body["content"]
        existing = next(
            (
                r
                for r in self.reactions
                if r.comment_id == comment.id and r.user == author and r.content == content
            ),
            None,
        )
        status = 200
        if existing is None:
            existing = Reaction(next(self._ids), comment.id, content, author)
            self.reactions.append(existing)
            status = 201
        data = example("reaction")
        data.update(
            id=existing.id, content=content, user=self._user(author), created_at=_ts(self.clock())
        )
        return status, data, {}

    def _op_issues_add_labels(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        self._issue_exists(ctx)
        pull = self.pulls[(ctx.repo.full_name.lower(), ctx.params["issue_number"])]
        for item in (ctx.body or {}).get("labels", []):
            name = item if isinstance(item, str) else item["name"]
            if name not in pull.labels:
                pull.labels.append(name)
        return 200, [self._label(n) for n in pull.labels], {}

    def _op_issues_remove_label(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        self._issue_exists(ctx)
        pull = self.pulls[(ctx.repo.full_name.lower(), ctx.params["issue_number"])]
        if ctx.params["name"] not in pull.labels:
            raise Answer(404, "Label does not exist")
        pull.labels.remove(ctx.params["name"])
        return 200, [self._label(n) for n in pull.labels], {}

    # -- operations: pull requests -----------------------------------------------------------

    def _find_pull(self, ctx: Context) -> Pull:
        assert ctx.repo is not None
        pull = self.pulls.get((ctx.repo.full_name.lower(), ctx.params["pull_number"]))
        if pull is None:
            raise Answer(404, "Not Found")
        return pull

    def _op_pulls_get(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        return 200, self._pull_json(self._find_pull(ctx)), {}

    def _op_pulls_list(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        state = ctx.query.get("state", "open")
        pulls = [
            p
            for (r, _), p in sorted(self.pulls.items())
            if r == ctx.repo.full_name.lower()
            and (state == "all" or p.state == state)
            and ("base" not in ctx.query or p.base_ref == ctx.query["base"])
            and (
                "head" not in ctx.query
                or f"{(p.head_repo or ctx.repo.full_name).split('/')[0]}:{p.head_ref}"
                == ctx.query["head"]
            )
        ]
        chunk, headers = self._paginate(ctx, pulls)
        return 200, [self._pull_json(p, simple=True) for p in chunk], headers

    def _op_pulls_list_files(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        chunk, headers = self._paginate(ctx, self._find_pull(ctx).files)
        return 200, chunk, headers

    def _op_pulls_list_commits(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        shas = self._find_pull(ctx).commits
        chunk, headers = self._paginate(ctx, shas)
        items = []
        for sha in chunk:
            item = example("commit-items")[0]
            item.update(sha=sha)
            items.append(item)
        return 200, items, headers

    def _op_pulls_update(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        pull = self._find_pull(ctx)
        body = ctx.body or {}
        for key in ("title", "body", "state", "maintainer_can_modify"):
            if key in body:
                setattr(pull, key, body[key])
        if "base" in body:
            pull.base_ref = body["base"]
        return 200, self._pull_json(pull), {}

    def _op_pulls_create_review(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        pull = self._find_pull(ctx)
        review = {"id": next(self._ids), **(ctx.body or {})}
        pull.reviews.append(review)
        data = example("pull-request-review")
        data.update(
            id=review["id"],
            body=review.get("body", ""),
            user=self._user(self._author(ctx)),
            state="COMMENTED" if review.get("event") != "APPROVE" else "APPROVED",
        )
        return 200, data, {}

    # -- operations: git data ----------------------------------------------------------------

    def _ref_json(self, ctx: Context, ref: str, sha: str) -> dict[str, Any]:
        assert ctx.repo is not None
        data = example("git-ref")
        data.update(
            ref=f"refs/{ref}", url=f"{self.base_url}/repos/{ctx.repo.full_name}/git/refs/{ref}"
        )
        data["object"].update(
            sha=sha,
            type="commit",
            url=f"{self.base_url}/repos/{ctx.repo.full_name}/git/commits/{sha}",
        )
        return data

    def _op_git_get_ref(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        ref = ctx.params["ref"].removeprefix("refs/")
        if ref not in ctx.repo.refs:
            raise Answer(404, "Not Found")
        return 200, self._ref_json(ctx, ref, ctx.repo.refs[ref]), {}

    def _op_git_create_ref(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        ref = ctx.body["ref"]
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise Answer(422, "Reference name is invalid", violation=f"create ref {ref!r}")
        short = ref.removeprefix("refs/")
        if short in ctx.repo.refs:
            raise Answer(422, "Reference already exists")
        ctx.repo.refs[short] = ctx.body["sha"]
        return 201, self._ref_json(ctx, short, ctx.body["sha"]), {}

    def _is_ancestor(self, old: str, new: str) -> bool:
        seen, todo = set(), [new]
        while todo:
            sha = todo.pop()
            if sha == old:
                return True
            if sha in seen:
                continue
            seen.add(sha)
            todo.extend(self.commits.get(sha, {}).get("parents", []))
        return False

    def _op_git_update_ref(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        ref = ctx.params["ref"].removeprefix("refs/")
        if ref not in ctx.repo.refs:
            raise Answer(422, "Reference does not exist")
        new = ctx.body["sha"]
        if not ctx.body.get("force", False) and not self._is_ancestor(ctx.repo.refs[ref], new):
            raise Answer(422, "Update is not a fast forward")
        ctx.repo.refs[ref] = new
        return 200, self._ref_json(ctx, ref, new), {}

    def _op_git_create_blob(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        body = ctx.body
        content = (
            base64.b64decode(body["content"])
            if body.get("encoding") == "base64"
            else body["content"].encode()
        )
        sha = _git_sha("blob", content)
        self.blobs[sha] = content
        return (
            201,
            {"sha": sha, "url": f"{self.base_url}/repos/{ctx.repo.full_name}/git/blobs/{sha}"},
            {},
        )

    def _op_git_create_tree(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        entries = list(self.trees.get(ctx.body.get("base_tree", ""), []))
        for entry in ctx.body["tree"]:
            entry = dict(entry)
            if "content" in entry:
                blob = entry.pop("content").encode()
                entry["sha"] = _git_sha("blob", blob)
                self.blobs[entry["sha"]] = blob
            entries = [e for e in entries if e["path"] != entry["path"]]
            if entry.get("sha") is not None:
                entries.append(entry)
        sha = _git_sha(
            "tree", json.dumps(sorted(entries, key=lambda e: e["path"]), sort_keys=True).encode()
        )
        self.trees[sha] = entries
        return 201, self._tree_json(ctx, sha), {}

    def _tree_json(self, ctx: Context, sha: str) -> dict[str, Any]:
        assert ctx.repo is not None
        return {
            "sha": sha,
            "url": f"{self.base_url}/repos/{ctx.repo.full_name}/git/trees/{sha}",
            "truncated": False,
            "tree": [
                {
                    "path": e["path"],
                    "mode": e["mode"],
                    "type": e["type"],
                    "sha": e["sha"],
                    "size": len(self.blobs.get(e["sha"], b"")),
                    "url": f"{self.base_url}/repos/{ctx.repo.full_name}/git/blobs/{e['sha']}",
                }
                for e in sorted(self.trees[sha], key=lambda e: e["path"])
            ],
        }

    def _op_git_get_tree(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        if ctx.params["tree_sha"] not in self.trees:
            raise Answer(404, "Not Found")
        return 200, self._tree_json(ctx, ctx.params["tree_sha"]), {}

    def _op_git_create_commit(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        body = ctx.body
        if body["tree"] not in self.trees:
            raise Answer(422, "Tree SHA does not exist")
        record = {
            "message": body["message"],
            "tree": body["tree"],
            "parents": list(body.get("parents", [])),
        }
        sha = _git_sha("commit", json.dumps(record, sort_keys=True).encode())
        self.commits[sha] = record
        return 201, self._commit_json(ctx, sha), {}

    def _commit_json(self, ctx: Context, sha: str) -> dict[str, Any]:
        assert ctx.repo is not None
        record = self.commits[sha]
        data = example("git-commit")
        base = f"{self.base_url}/repos/{ctx.repo.full_name}/git"
        data.update(sha=sha, message=record["message"], url=f"{base}/commits/{sha}")
        data["tree"] = {"sha": record["tree"], "url": f"{base}/trees/{record['tree']}"}
        data["parents"] = [
            {
                "sha": p,
                "url": f"{base}/commits/{p}",
                "html_url": f"https://github.com/{ctx.repo.full_name}/commit/{p}",
            }
            for p in record["parents"]
        ]
        return data

    def _op_git_get_commit(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        if ctx.params["commit_sha"] not in self.commits:
            raise Answer(404, "Not Found")
        return 200, self._commit_json(ctx, ctx.params["commit_sha"]), {}


def all_operation_ids() -> Iterable[str]:
    return (o.operation_id for o in operations())
