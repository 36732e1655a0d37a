"""The fake's repository operations: the repository, collaborators' permissions, contents, compare."""

from __future__ import annotations

import base64
from typing import Any

from tests.fake_github.spec import ROLE_TO_PERMISSION, example
from tests.fake_github.state import Answer, Context, _git_sha


class ReposOps:
    """Mixed into FakeGitHub; ``self`` is the fake."""

    def _op_repos_get(self, ctx: Context) -> tuple[int, Any, dict[str, str]]:
        assert ctx.repo is not None
        data = self._repo_json(ctx.repo)
        if ctx.token is not None and ctx.token.user is not None:  # as that person sees it
            data["permissions"] = self.user_permissions(ctx.token.user, ctx.repo)
        return 200, data, {}

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
