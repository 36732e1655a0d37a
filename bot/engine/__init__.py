"""The engine: drives runs from state to state after crashes too; the job queue and workers."""
