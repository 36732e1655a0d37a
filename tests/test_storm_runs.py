"""A webhook storm through whole runs: 1,000 deliveries, 10% of them redelivered, 50 at a time.

Twenty pull requests each get a burst of what GitHub sends around a pull request (opened,
reopened, ready for review, a synchronize for the same head, labels, edits, reviews, comments,
bots' comments, check suites) in random order, with redeliveries mixed in. Exactly one run per
pull request must come out, each with one check-run and one comment: none lost, none twice.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from bot.schemas.state import Outcome
from bot.server.app import STORE

PRS = 20
DISTINCT = 900
DUPLICATES = 100
CONCURRENCY = 50
RUN_TRIGGERS = ("opened", "reopened", "ready_for_review", "synchronize")


async def test_a_storm_of_deliveries_makes_exactly_one_run_per_pull_request(
    make_bot: Callable[..., Any]
) -> None:
    bot = await make_bot({f"src/f{n}.txt": f"line of {n}\n" for n in range(1, PRS + 1)})
    for n in range(1, PRS + 1):
        bot.remote.commit(f"change-{n}", {f"src/f{n}.txt": f"ours {n}\n"}, "ours",
                          new_branch=True)
    bot.remote.commit("main", {f"src/f{n}.txt": f"theirs {n}\n" for n in range(1, PRS + 1)},
                      "theirs")
    for n in range(1, PRS + 1):
        bot.open_pull(n, f"change-{n}")

    rng = random.Random(1000)
    deliveries: list[tuple[str, str, dict[str, Any]]] = []
    for n in range(1, PRS + 1):
        for action in RUN_TRIGGERS:
            deliveries.append((f"pr{n}-{action}", "pull_request", bot.pull_payload(n, action)))
    noise = [
        ("pull_request", lambda n: bot.pull_payload(n, "labeled")),
        ("pull_request", lambda n: bot.pull_payload(n, "edited", title={"from": "old"})),
        ("pull_request_review", lambda n: {**bot.pull_payload(n, "submitted"),
                                           "review": {"id": n, "state": "commented"}}),
        ("issue_comment", lambda n: bot.comment_payload(n, f"looks good {rng.random()}")),
        ("issue_comment", lambda n: bot.comment_payload(n, "/gwi run", login="ci[bot]",
                                                        user_type="Bot")),
        ("issue_comment", lambda n: bot.comment_payload(n, "edited text", action="edited")),
        ("check_suite", lambda n: {"action": "completed", "repository": bot._repo_json(),
                                   "check_suite": {"id": n}}),
        ("star", lambda n: {"action": "created", "repository": bot._repo_json()}),
    ]
    while len(deliveries) < DISTINCT:
        event, make = noise[len(deliveries) % len(noise)]
        number = rng.randint(1, PRS)
        deliveries.append((f"noise-{len(deliveries)}", event, make(number)))
    sends = deliveries + rng.choices(deliveries, k=DUPLICATES)
    rng.shuffle(sends)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def send(delivery_id: str, event: str, payload: dict[str, Any]) -> int:
        async with gate:
            return await bot.deliver(event, payload, delivery_id=delivery_id, wait=False)

    answers = Counter(await asyncio.gather(*(send(*d) for d in sends)))
    assert answers == {202: DISTINCT, 200: DUPLICATES}
    await bot.idle(timeout=120)

    store = bot.client.app[STORE]
    counts = await store.counts()
    assert counts.deliveries == {"pending": 0, "processing": 0, "failed": 0}
    assert counts.jobs == {"pending": 0, "running": 0, "failed": 0}
    # one job per run-triggering delivery, however often it was delivered...
    jobs = await store.list_jobs(kind="pr.run")
    assert len(jobs) == PRS * len(RUN_TRIGGERS)
    # ...and one run per pull request, reported once
    views = bot.views()
    assert sorted(v.ctx.pull_request.number for v in views if v.ctx.pull_request) == list(
        range(1, PRS + 1))
    assert {v.ctx.outcome for v in views} == {Outcome.NEEDS_HUMAN}
    checks = bot.check_runs()
    assert len(checks) == PRS and {c.status for c in checks} == {"completed"}
    assert sorted(c.external_id for c in checks) == sorted(v.ctx.run_id for v in views)
    for n in range(1, PRS + 1):
        assert len([c for c in bot.bot_comments(n) if "gwi:status" in c.body]) == 1
        assert [c for c in bot.bot_comments(n) if "gwi:status" not in c.body] == []
