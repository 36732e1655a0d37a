"""app.yml asks GitHub for exactly the permissions gwi's tokens use: no more, no less."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.github.capabilities import PUSH_PERMISSIONS, WORK_PERMISSIONS

MANIFEST = Path(__file__).resolve().parent.parent / "app.yml"
LEVELS = {"read": 1, "write": 2}


def test_the_manifest_asks_for_what_the_tokens_use() -> None:
    asked = yaml.safe_load(MANIFEST.read_text())["default_permissions"]
    used: dict[str, str] = {"metadata": "read"}
    for permissions in (WORK_PERMISSIONS, PUSH_PERMISSIONS):
        for name, level in permissions.items():
            if LEVELS[level] > LEVELS.get(used.get(name, ""), 0):
                used[name] = level
    assert asked == used


def test_the_manifest_never_asks_to_edit_pull_requests() -> None:
    # gwi never opens or edits a pull request (docs/github-capabilities.md): it must not be able to
    asked = yaml.safe_load(MANIFEST.read_text())["default_permissions"]
    assert asked["pull_requests"] == "read"
