"""GitHub's API description as the fake uses it: the operations, their schemas, their examples."""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openapi_schema_validator import OAS30ReadValidator, OAS30WriteValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

SPEC_PATH = Path(__file__).resolve().parent.parent / "fixtures" / "github" / "rest-api-subset.json"
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


def all_operation_ids() -> Iterable[str]:
    return (o.operation_id for o in operations())
