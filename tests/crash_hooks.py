"""Kill points for `gwi serve`, loaded with ``--extra-module crash_hooks`` by the crash tests.

``GWI_KILL_AT`` names one point of `KILL_POINTS`. The first time the server passes it, the
point's name is appended to ``GWI_KILL_LOG`` and the whole process group (the server and any
git it started) gets SIGKILL, as a host losing power would. Nothing else changes: the hooks
wrap real functions and call them unchanged; without ``GWI_KILL_AT`` this module does nothing.
"""

from __future__ import annotations

import functools
import inspect
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gidgethub import routing

router = routing.Router()  # `--extra-module` wants a router or job kinds; this has no routes


@dataclass(frozen=True)
class KillPoint:
    """Die ``when`` ("before" or "after") ``owner.attribute`` is called, if ``matches`` says
    the call is the one meant (it sees the call's arguments and, after, its result)."""

    owner: str  # module path, with a class name after a colon: "bot.runs.store:RunHandle"
    attribute: str
    when: str
    matches: Callable[[tuple[Any, ...], dict[str, Any], Any], bool] = lambda a, k, r: True


def _transition_to(state: str) -> Callable[[tuple[Any, ...], dict[str, Any], Any], bool]:
    return lambda args, kwargs, result: str(getattr(args[1], "value", args[1])) == state


def _body_has(text: str) -> Callable[[tuple[Any, ...], dict[str, Any], Any], bool]:
    return lambda args, kwargs, result: text in str(args[2] if len(args) > 2 else "")


def _artifact(name: str) -> Callable[[tuple[Any, ...], dict[str, Any], Any], bool]:
    return lambda args, kwargs, result: args[1] == name


def _conclusion(value: str) -> Callable[[tuple[Any, ...], dict[str, Any], Any], bool]:
    return lambda args, kwargs, result: kwargs.get("conclusion") == value


def _temp_of(name: str) -> Callable[[tuple[Any, ...], dict[str, Any], Any], bool]:
    # commit_temp(temporary file, target): the target names the artifact
    return lambda args, kwargs, result: str(args[2]).endswith("/" + name)


STORE = "bot.runs.handle:RunHandle"
CLIENT = "bot.github.client:RepoClient"

#: Every point, named for where the server is when it dies: preparing the run, each stage of
#: the engine (before and after its transition, and half-way through writing the patch), each
#: report to GitHub, the approval, and each step of the push.
KILL_POINTS: dict[str, KillPoint] = {
    # git itself dies holding its ref locks: see `_arm_git_hook`
    "fetching": KillPoint("bot.github.repo_cache:RepoCache", "run_git", "before",
                          lambda a, k, r: False),
    "fetched": KillPoint("bot.github.repo_cache:RepoCache", "fetch_pull", "after"),
    "bundle_created": KillPoint("bot.runs.store:RunStore", "create", "after"),
    "indexed": KillPoint("bot.queue.pr_index:SqliteRunIndex", "add", "after"),
    "check_run_created": KillPoint(CLIENT, "create_check_run", "after"),
    "triage_written": KillPoint(STORE, "transition", "before", _transition_to("triaged")),
    "triaged": KillPoint(STORE, "transition", "after", _transition_to("triaged")),
    "plan_written": KillPoint(STORE, "transition", "before", _transition_to("planned")),
    "planned": KillPoint(STORE, "transition", "after", _transition_to("planned")),
    "resolving": KillPoint(STORE, "transition", "after", _transition_to("resolving")),
    "patch_half_written": KillPoint("bot.runs.folder_store", "commit_temp", "before",
                                    _temp_of("patch.diff")),
    "resolved": KillPoint(STORE, "transition", "before", _transition_to("review")),
    "review_written": KillPoint(STORE, "transition", "before",
                                _transition_to("awaiting_approval")),
    "awaiting_approval": KillPoint(STORE, "transition", "after",
                                   _transition_to("awaiting_approval")),
    "check_action_required": KillPoint(CLIENT, "update_check_run", "after",
                                       _conclusion("action_required")),
    "status_comment_created": KillPoint(CLIENT, "create_comment", "after",
                                        _body_has("gwi:status")),
    "reaction_added": KillPoint(CLIENT, "add_reaction", "after"),
    "approval_recorded": KillPoint(STORE, "write_artifact", "after", _artifact("approval.json")),
    "approval_reply_posted": KillPoint(CLIENT, "create_comment", "after",
                                       _body_has("approved: pushing")),
    "applying": KillPoint(STORE, "transition", "after", _transition_to("applying")),
    "commit_made": KillPoint("bot.github.approved_commit", "_make_commit", "after"),
    "before_push": KillPoint("bot.github.handle_push", "_push_with_lease", "before"),
    "pushed": KillPoint("bot.github.handle_push", "_push_with_lease", "after"),
    "done_recorded": KillPoint(STORE, "transition", "after", _transition_to("done")),
    "check_success": KillPoint(CLIENT, "update_check_run", "after", _conclusion("success")),
}

_fired = threading.Lock()


def _die(name: str) -> None:
    if not _fired.acquire(blocking=False):
        return
    with open(os.environ["GWI_KILL_LOG"], "a", encoding="utf-8") as log:
        log.write(f"{name}\n")
    os.killpg(os.getpgid(0), signal.SIGKILL)


def _owner(path: str) -> Any:
    import importlib

    module_name, _, class_name = path.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name) if class_name else module


def _arm(name: str, point: KillPoint) -> None:
    owner = _owner(point.owner)
    original = getattr(owner, point.attribute)
    # Module-level functions are called without the owner: give `matches` the same shape.
    shift = () if inspect.isclass(owner) else (None,)

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
            if point.when == "before" and point.matches((*shift, *args), kwargs, None):
                _die(name)
            result = await original(*args, **kwargs)
            if point.when == "after" and point.matches((*shift, *args), kwargs, result):
                _die(name)
            return result

        setattr(owner, point.attribute, wrapped_async)
        return

    @functools.wraps(original)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if point.when == "before" and point.matches((*shift, *args), kwargs, None):
            _die(name)
        result = original(*args, **kwargs)
        if point.when == "after" and point.matches((*shift, *args), kwargs, result):
            _die(name)
        return result

    setattr(owner, point.attribute, wrapped)


# git runs this hook of the repository it updates once it holds the locks of the refs it is
# about to move ("prepared"); killing the process group there leaves those locks behind, as a
# power cut in the middle of a fetch would.
_GIT_HOOK = "reference-transaction"
_GIT_HOOK_TEXT = """#!/bin/sh
if [ "$1" = prepared ]; then
  echo fetching >> "$GWI_KILL_LOG"
  kill -9 0
fi
"""


def _arm_git_hook() -> None:
    from pathlib import Path

    from bot.github.repo_cache import RepoCache

    original = RepoCache.run_git

    async def run(self: Any, args: Any, git_dir: Any, **kwargs: Any) -> Any:
        if git_dir is not None and "fetch" in args:
            hook = Path(git_dir) / "hooks" / _GIT_HOOK
            hook.parent.mkdir(exist_ok=True)
            hook.write_text(_GIT_HOOK_TEXT)
            hook.chmod(0o755)
        return await original(self, args, git_dir, **kwargs)

    RepoCache.run_git = run  # type: ignore[method-assign]


def _disarm_git_hooks() -> None:
    """A life not armed with the git hook removes any an earlier life left."""
    from pathlib import Path

    data = os.environ.get("GWI_DATA_DIR")
    if data:
        for hook in Path(data).glob(f"repos/*/*.git/hooks/{_GIT_HOOK}"):
            hook.unlink()


_chosen = os.environ.get("GWI_KILL_AT")
if _chosen == "fetching":
    _arm_git_hook()
else:
    _disarm_git_hooks()
    if _chosen:
        _arm(_chosen, KILL_POINTS[_chosen])
