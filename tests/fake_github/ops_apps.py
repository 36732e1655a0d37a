"""The fake's App operations: the App itself, installation tokens, webhook deliveries, rate limit."""

from __future__ import annotations

import secrets
from typing import Any

from tests.fake_github.spec import LEVELS, NOT_IN_INSTALLATION, example
from tests.fake_github.state import Answer, Context, Delivery, Token, _ts


class AppsOps:
    """Mixed into FakeGitHub; ``self`` is the fake."""

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
