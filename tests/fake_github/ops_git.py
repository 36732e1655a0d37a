"""The fake's git data operations: refs, blobs, trees and commits."""

from __future__ import annotations

import base64
import json
from typing import Any

from tests.fake_github.spec import example
from tests.fake_github.state import Answer, Context, _git_sha


class GitOps:
    """Mixed into FakeGitHub; ``self`` is the fake."""

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
