"""The failures of talking to GitHub and pushing to it, each with a reason a person can act on."""

from __future__ import annotations

from bot.errors import GitError, GwiError


class GitHubError(GwiError):
    """A GitHub API call that failed for good (after any retries it deserved).

    ``status`` is the last HTTP status (None when GitHub never answered), ``method`` and
    ``path`` name the call without its host or credentials, ``reason`` says why in words.
    """

    def __init__(
        self,
        reason: str,
        *,
        method: str,
        path: str,
        status: int | None = None,
        attempts: int = 1,
    ) -> None:
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        status_text = f" ({status})" if status is not None else ""
        super().__init__(f"GitHub {method} {path} failed{tries}{status_text}: {reason}")
        self.reason = reason
        self.method = method
        self.path = path
        self.status = status
        self.attempts = attempts


class PushRejected(GitError):
    """The remote refused a push, typically because the branch moved (lease lost)."""


class UnapprovedPush(GitError):
    """The push primitive was handed a commit its approval record does not cover."""
