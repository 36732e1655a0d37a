"""The fake's pull-request operations."""

from __future__ import annotations

from typing import Any

from tests.fake_github.spec import example
from tests.fake_github.state import Answer, Context, Pull


class PullsOps:
    """Mixed into FakeGitHub; ``self`` is the fake."""

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
