"""The fake's issue operations: comments, reactions and labels."""

from __future__ import annotations

from typing import Any

from tests.fake_github.spec import example
from tests.fake_github.state import Answer, Comment, Context, Reaction, _ts


class IssuesOps:
    """Mixed into FakeGitHub; ``self`` is the fake."""

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
