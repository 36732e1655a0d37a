"""The fake's check-run operations."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

from tests.fake_github.state import Answer, CheckRun, Context


class ChecksOps:
    """Mixed into FakeGitHub; ``self`` is the fake."""

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
