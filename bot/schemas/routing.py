"""Who resolves a run, decided from its final complexity score: the thresholds live here only."""

from __future__ import annotations

import enum


class Route(enum.StrEnum):
    DETERMINISTIC = "deterministic"  # the resolver's provable strategies are enough
    AGENT = "agent"  # an LLM may propose resolutions for what the resolver leaves
    HUMAN = "human"  # too risky to propose anything without a person looking first


#: Highest final score routed to each route (inclusive), in order.
DETERMINISTIC_MAX = 3
AGENT_MAX = 6


def route_for(final_score: int) -> Route:
    if not 1 <= final_score <= 10:
        raise ValueError(f"a complexity score is 1..10, got {final_score}")
    if final_score <= DETERMINISTIC_MAX:
        return Route.DETERMINISTIC
    if final_score <= AGENT_MAX:
        return Route.AGENT
    return Route.HUMAN
