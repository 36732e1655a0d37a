"""How the fake shapes its state into GitHub's JSON: users, repositories, pulls, comments, check runs, pages."""

from __future__ import annotations

import hashlib
from typing import Any

from tests.fake_github.spec import example
from tests.fake_github.state import Answer, CheckRun, Comment, Context, Pull, Repo, _ts


class Shapes:
    """Mixed into FakeGitHub; ``self`` is the fake."""

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
