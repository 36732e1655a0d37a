"""GET /metrics: what an operator graphs, counted as a run is taken, approved and pushed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.gate_world import PR, approve, awaiting, pushes


def _value(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    assert found, f"{name} {labels} not in /metrics"
    return float(found.group(1))


async def test_metrics_count_deliveries_jobs_stages_github_calls_approvals_and_pushes(
    make_bot: Callable[..., Any]
) -> None:
    bot, view = await awaiting(make_bot)
    await bot.deliver("issue_comment", bot.comment_payload(PR, approve(view)))
    assert pushes(bot) == 1
    await bot.deliver("pull_request", bot.pull_payload(PR, "opened"), delivery_id="again")
    await bot.deliver("pull_request", bot.pull_payload(PR, "opened"), delivery_id="again")
    refused = await bot.client.post("/webhook", data=b"{}", headers={
        "X-GitHub-Event": "ping", "X-GitHub-Delivery": "x", "X-Hub-Signature-256": "sha256=0"})
    assert refused.status == 401
    response = await bot.client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    text = await response.text()
    assert _value(text, "gwi_deliveries_received_total") >= 3
    assert _value(text, "gwi_deliveries_deduplicated_total") == 1
    assert _value(text, "gwi_deliveries_rejected_total", reason="signature") == 1
    assert _value(text, "gwi_jobs_finished_total", kind="pr.run", outcome="done") >= 1
    assert _value(text, "gwi_jobs_finished_total", kind="pr.apply", outcome="done") == 1
    assert _value(text, "gwi_run_stage_seconds_count", stage="awaiting_approval") >= 1
    assert _value(text, "gwi_github_api_calls_total", method="POST", status="ok") > 0
    assert _value(text, "gwi_approvals_total", result="accepted", code="none") == 1
    assert _value(text, "gwi_pushes_total", result="pushed") == 1
    assert _value(text, "gwi_queue_items", table="jobs", status="failed") == 0


async def test_a_metrics_token_guards_the_figures(make_bot: Callable[..., Any]) -> None:
    bot = await make_bot({"README.md": "x\n"}, GWI_METRICS_TOKEN="s3cret-metrics-token")
    assert (await bot.client.get("/metrics")).status == 401
    wrong = await bot.client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    right = await bot.client.get("/metrics",
                                 headers={"Authorization": "Bearer s3cret-metrics-token"})
    assert right.status == 200 and "gwi_deliveries_received_total" in await right.text()
