"""The repository as gwi reads it: git plumbing, and the in-memory merge analysis built on it."""
