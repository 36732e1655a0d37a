"""`gwi demo`: the whole pipeline on real conflicts, offline, in a temporary repository.

The conflicts are files from real merges of open-source projects (flask, express,
setuptools, spring-boot; see ``scenarios/README.md``), shipped with gwi so the demo needs nothing but git.
"""
