"""The run state machine: the states, the allowed transitions, and the outcome each end may carry.

Pure: no I/O. `bot.runs.store.RunHandle.transition` is the one place that applies a transition
to a run on disk, and it asks `check_transition` first.
"""

from __future__ import annotations

import enum

from bot.errors import GwiError


class RunState(enum.StrEnum):
    QUEUED = "queued"
    TRIAGED = "triaged"
    PLANNED = "planned"
    RESOLVING = "resolving"
    REVIEW = "review"
    AWAITING_APPROVAL = "awaiting_approval"
    APPLYING = "applying"
    DONE = "done"
    ABORTED = "aborted"
    FAILED = "failed"


TERMINAL: frozenset[RunState] = frozenset({RunState.DONE, RunState.ABORTED, RunState.FAILED})

# The happy path and its two short cuts; `aborted` and `failed` are added to every
# non-terminal state below so that no caller can forget them.
_FORWARD: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.TRIAGED}),
    RunState.TRIAGED: frozenset({RunState.PLANNED}),
    # planned -> review when there is nothing to resolve.
    RunState.PLANNED: frozenset({RunState.RESOLVING, RunState.REVIEW}),
    RunState.RESOLVING: frozenset({RunState.REVIEW}),
    # review -> done when there is nothing to apply (no changes needed, or a human must step in).
    RunState.REVIEW: frozenset({RunState.AWAITING_APPROVAL, RunState.DONE}),
    RunState.AWAITING_APPROVAL: frozenset({RunState.APPLYING}),
    RunState.APPLYING: frozenset({RunState.DONE}),
}

TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    state: (_FORWARD.get(state, frozenset()) | {RunState.ABORTED, RunState.FAILED})
    if state not in TERMINAL
    else frozenset()
    for state in RunState
}


class Outcome(enum.StrEnum):
    """Why a run ended, in words a maintainer reads on the check-run."""

    NO_CHANGES_NEEDED = "no_changes_needed"  # nothing conflicted: the PR merges as it is
    APPLIED = "applied"  # the approved patch was committed (and pushed, on GitHub)
    NEEDS_HUMAN = "needs_human"  # gwi could not produce an approvable patch; a person must merge
    HANDED_OFF = "handed_off"  # approvable patch, but gwi may not write there (a fork): apply by hand
    SUPERSEDED = "superseded"  # a newer head of the same PR started a new run
    STALE = "stale"  # head or base moved between review and apply: nothing was written
    CANCELLED = "cancelled"  # a person aborted the run, or the PR was closed
    ERROR = "error"  # something broke; the run's error field says what


OUTCOMES_BY_STATE: dict[RunState, frozenset[Outcome]] = {
    RunState.DONE: frozenset(
        {Outcome.NO_CHANGES_NEEDED, Outcome.APPLIED, Outcome.NEEDS_HUMAN, Outcome.HANDED_OFF}
    ),
    RunState.ABORTED: frozenset({Outcome.SUPERSEDED, Outcome.STALE, Outcome.CANCELLED}),
    RunState.FAILED: frozenset({Outcome.ERROR}),
}


class InvalidTransition(GwiError):
    """A transition the state machine does not allow; the run is left unchanged."""

    def __init__(self, source: RunState, target: RunState) -> None:
        allowed = sorted(TRANSITIONS[source])
        names = ", ".join(s.value for s in allowed) if allowed else "none: it is terminal"
        super().__init__(
            f"cannot move a run from {source.value} to {target.value} (allowed from"
            f" {source.value}: {names})"
        )
        self.source = source
        self.target = target


def check_transition(source: RunState, target: RunState) -> None:
    """Raise `InvalidTransition` unless ``source -> target`` is allowed."""
    if target not in TRANSITIONS[source]:
        raise InvalidTransition(source, target)


def check_outcome(state: RunState, outcome: Outcome | None) -> None:
    """A terminal state needs an outcome that fits it; a live state has none."""
    if state in TERMINAL:
        if outcome is None:
            raise ValueError(f"a run that is {state.value} needs an outcome")
        if outcome not in OUTCOMES_BY_STATE[state]:
            fits = ", ".join(sorted(o.value for o in OUTCOMES_BY_STATE[state]))
            raise ValueError(f"outcome {outcome.value} does not fit state {state.value} ({fits})")
    elif outcome is not None:
        raise ValueError(f"a run that is still {state.value} has no outcome yet")
