"""The agents (triage, planner, resolver, reviewer) and the one LLM interface they share."""
