"""The four agents of a run (triage, planner, resolver, reviewer): deterministic cores, with LLM
help behind one provider interface (`bot.agents.llm`) where it is configured."""
