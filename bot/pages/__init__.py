"""Run pages: each run's bundle shown to the people who may read its repository, behind GitHub sign-in."""
