"""The error types every layer shares: the one the command line turns into a clear message, and
the failure of a git command (local or against GitHub)."""


class GwiError(Exception):
    """An expected failure with a message meant for a person.

    ``exit_code`` is what the command line exits with (2 unless a command's contract says
    otherwise, as `gwi merge-file` does).
    """

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class GitError(GwiError):
    """A git command failed; the message carries git's own explanation."""
