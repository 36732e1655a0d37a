"""gwi: a GitHub App that resolves pull-request merge conflicts and pushes only what a person approved."""

__version__ = "0.1.0"
