"""The run pages of `gwi serve`: what one run shows a person (content, rendering), and who may
see it (GitHub sign-in, sessions, access checks)."""
