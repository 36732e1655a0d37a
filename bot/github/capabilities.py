"""The capability matrix: what gwi may do on GitHub freely, and what only a verified approval
unlocks. The token permissions follow from it, so the split is enforced by GitHub itself too."""

from __future__ import annotations

import enum
from collections.abc import Mapping


class Capability(enum.StrEnum):
    READ_PULL_REQUEST = "read_pull_request"  # metadata, head and base, author, draft state
    READ_CONTENTS = "read_contents"  # the diff, files, .github/gwi.yml; git fetch
    COMMENT = "comment"  # the living status comment, replies to commands, reactions
    LABEL = "label"
    CHECK_RUN = "check_run"
    COMMIT = "commit"  # create the merge commit gwi proposes
    PUSH = "push"  # move the pull request's branch
    UPDATE_PULL_REQUEST = "update_pull_request"  # open a PR, or change one's title/body/base


#: Needs a verified approval record of the run (see `bot.github.handle_push`).
NEEDS_APPROVAL: frozenset[Capability] = frozenset(
    {Capability.COMMIT, Capability.PUSH, Capability.UPDATE_PULL_REQUEST}
)
FREE: frozenset[Capability] = frozenset(Capability) - NEEDS_APPROVAL

#: The installation-token permissions each capability needs.
TOKEN_PERMISSIONS: Mapping[Capability, Mapping[str, str]] = {
    Capability.READ_PULL_REQUEST: {"pull_requests": "read", "metadata": "read"},
    Capability.READ_CONTENTS: {"contents": "read"},
    Capability.COMMENT: {"issues": "write"},
    Capability.LABEL: {"issues": "write"},
    Capability.CHECK_RUN: {"checks": "write"},
    Capability.COMMIT: {"contents": "write"},
    Capability.PUSH: {"contents": "write"},
    Capability.UPDATE_PULL_REQUEST: {"pull_requests": "write"},
}


def permissions_for(capabilities: frozenset[Capability]) -> dict[str, str]:
    """The narrowest token permissions that allow every one of ``capabilities``."""
    out: dict[str, str] = {}
    for capability in sorted(capabilities):
        for name, level in TOKEN_PERMISSIONS[capability].items():
            if out.get(name) != "write":
                out[name] = level
    return dict(sorted(out.items()))


#: The token every run works with: it can read, comment and report, and cannot write code.
WORK_PERMISSIONS = permissions_for(FREE)
#: The token the gate mints just before a push, and nothing else ever asks for.
PUSH_PERMISSIONS = permissions_for(frozenset({Capability.COMMIT, Capability.PUSH}))
