"""How the fake checks a request as GitHub would: its credentials, its path parameters, query and
body against the API description, the token's reach, and (loosely) its own response."""

from __future__ import annotations

import json
from typing import Any

import jwt as pyjwt
from aiohttp import web

from tests.fake_github.spec import (
    JWT_OPERATIONS,
    LEVELS,
    OPERATION_PERMISSIONS,
    Operation,
    _tolerable,
    _validator,
    schema_errors,
)
from tests.fake_github.state import Answer, Repo, Token


class RequestChecks:
    """Mixed into FakeGitHub; ``self`` is the fake."""

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
        if token.user is not None:
            self._check_user_scope(op, token, repo)
            return
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
