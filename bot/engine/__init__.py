"""The engine: drives runs from state to state, resumable after a crash; the job queue and workers."""
