"""The state machine allows exactly the documented transitions."""

from __future__ import annotations

import itertools

import pytest

from bot.schemas.state import (
    TERMINAL,
    TRANSITIONS,
    InvalidTransition,
    Outcome,
    RunState,
    check_outcome,
    check_transition,
)

S = RunState
ALLOWED = {
    (S.QUEUED, S.TRIAGED), (S.TRIAGED, S.PLANNED), (S.PLANNED, S.RESOLVING),
    (S.PLANNED, S.REVIEW), (S.RESOLVING, S.REVIEW), (S.REVIEW, S.AWAITING_APPROVAL),
    (S.REVIEW, S.DONE), (S.AWAITING_APPROVAL, S.APPLYING), (S.APPLYING, S.DONE),
} | {(s, end) for s in RunState if s not in TERMINAL for end in (S.ABORTED, S.FAILED)}


@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED))
def test_allowed(source: RunState, target: RunState) -> None:
    check_transition(source, target)


FORBIDDEN = sorted(set(itertools.product(RunState, RunState)) - ALLOWED)


def test_the_table_is_exactly_the_documented_one() -> None:
    assert {(s, t) for s, targets in TRANSITIONS.items() for t in targets} == ALLOWED
    assert len(FORBIDDEN) == 100 - len(ALLOWED)


@pytest.mark.parametrize(("source", "target"), FORBIDDEN)
def test_forbidden(source: RunState, target: RunState) -> None:
    with pytest.raises(InvalidTransition) as err:
        check_transition(source, target)
    assert source.value in str(err.value) and target.value in str(err.value)


def test_the_error_names_the_allowed_targets() -> None:
    with pytest.raises(InvalidTransition, match=r"allowed from queued: aborted, failed, triaged"):
        check_transition(S.QUEUED, S.DONE)
    with pytest.raises(InvalidTransition, match="it is terminal"):
        check_transition(S.DONE, S.FAILED)


def test_outcomes_fit_states() -> None:
    check_outcome(S.DONE, Outcome.APPLIED)
    check_outcome(S.REVIEW, None)
    for state, outcome, message in [
        (S.DONE, None, "needs an outcome"),
        (S.DONE, Outcome.STALE, "does not fit"),
        (S.FAILED, Outcome.APPLIED, "does not fit"),
        (S.REVIEW, Outcome.APPLIED, "no outcome yet"),
    ]:
        with pytest.raises(ValueError, match=message):
            check_outcome(state, outcome)
