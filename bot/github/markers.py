"""Hidden comment markers: how gwi finds the one comment it keeps per purpose on a PR."""

from __future__ import annotations

import re

# A hidden marker names the one comment gwi keeps per purpose (pr-agent's persistent
# comment): HTML comments do not render, and the name's alphabet cannot close one early.
_MARKER_NAME = re.compile(r"[a-z0-9][a-z0-9._:/-]*")

def comment_marker(name: str) -> str:
    """The hidden HTML marker for ``name``: ``<!-- gwi:name -->``."""
    if not _MARKER_NAME.fullmatch(name):
        raise ValueError(f"marker name must match {_MARKER_NAME.pattern}, not {name!r}")
    return f"<!-- gwi:{name} -->"


def has_marker(body: str, name: str) -> bool:
    """True when ``body`` carries the marker for ``name`` on a line of its own."""
    marker = comment_marker(name)
    return any(line.strip() == marker for line in body.splitlines())


def with_marker(body: str, name: str) -> str:
    """``body`` with the marker for ``name`` as its first line (added once)."""
    return body if has_marker(body, name) else f"{comment_marker(name)}\n{body}"
