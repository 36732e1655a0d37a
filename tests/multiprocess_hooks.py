"""Job kinds for the multi-process tests, loaded with ``--extra-module multiprocess_hooks``.

An `issues` delivery enqueues one job, once per delivery id: `storm.seen` (done at once), or
`storm.hold` when its payload says ``"hold": true``. A `storm.hold` job appends
``started <delivery> <pid>`` to ``GWI_STORM_LOG``, waits until the file ``GWI_STORM_RELEASE``
exists, then appends ``finished <delivery> <pid>``. With ``GWI_STORM_HOLD_RUNS=<point>`` (one of
`HOLD_POINTS`) a run appends ``paused <point> <pid>`` there and waits for the same file, so a
test can kill a worker in the middle of a real run. Real code is called unchanged; nothing happens without these variables.
"""

from __future__ import annotations

import asyncio
import functools
import os
from pathlib import Path
from typing import Any

from gidgethub import routing, sansio

from bot.queue.records import Job, UnitOfWork

router = routing.Router()
POLL_SECONDS = 0.02


@router.register("issues")
async def on_issue(event: sansio.Event, unit: UnitOfWork, **_: Any) -> None:
    """One job per delivery id: the idempotency key holds even if the delivery is retried."""
    kind = "storm.hold" if event.data.get("hold") else "storm.seen"
    unit.enqueue_job(kind, {"delivery": event.delivery_id},
                     idempotency_key=f"storm:{event.delivery_id}")


def _log(line: str) -> None:
    """One line to the test's log (small appends from several processes do not interleave)."""
    with open(os.environ["GWI_STORM_LOG"], "a", encoding="utf-8") as log:
        log.write(line + "\n")


def _note(what: str, job: Job) -> None:
    _log(f"{what} {job.payload['delivery']} {os.getpid()}")


async def released() -> None:
    """Return once the test has created the release file."""
    release = Path(os.environ["GWI_STORM_RELEASE"])
    while not release.exists():
        await asyncio.sleep(POLL_SECONDS)


async def seen(job: Job, unit: UnitOfWork, **_: Any) -> None:
    """Nothing to do: the job's row, done, is what the storm test counts."""


async def hold(job: Job, unit: UnitOfWork, **_: Any) -> None:
    """Work that lasts until the test releases it (the test kills a worker meanwhile)."""
    _note("started", job)
    await released()
    _note("finished", job)


job_handlers = {"storm.seen": seen, "storm.hold": hold}


#: Where ``GWI_STORM_HOLD_RUNS`` may pause a run: after its fetch (before its bundle exists),
#: after its check-run is created (its bundle made and indexed), or right after the approved
#: push landed (before the run records it). ``None``: a function of the module itself.
HOLD_POINTS = {"fetched": ("bot.github.repo_cache", "RepoCache", "fetch_pull"),
               "check_run_created": ("bot.github.client", "RepoClient", "create_check_run"),
               "pushed": ("bot.github.handle_push", None, "_push_with_lease")}


def _hold_runs_at(point: str) -> None:
    import importlib

    module, owner_name, attribute = HOLD_POINTS[point]
    found = importlib.import_module(module)
    owner = found if owner_name is None else getattr(found, owner_name)
    original = getattr(owner, attribute)

    @functools.wraps(original)
    async def held(*args: Any, **kwargs: Any) -> Any:
        result = await original(*args, **kwargs)
        _log(f"paused {point} {os.getpid()}")
        await released()
        return result

    setattr(owner, attribute, held)


if os.environ.get("GWI_STORM_HOLD_RUNS"):
    _hold_runs_at(os.environ["GWI_STORM_HOLD_RUNS"])
