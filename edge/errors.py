"""One error family. Every error a user can cause (a bad file, option, model, corpus or download) is
an `EdgeSerError` carrying the exit code the CLI ends with, so a library user has one type to catch
and the CLI turns any of them into one line, never a traceback (docs/design.md, contract 6)."""
from __future__ import annotations

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_DRIFT = 0, 1, 2, 3  # 3: the converter's drift gate failed


class EdgeSerError(Exception):
    """A mistake in what the user gave (or an environment they can fix), with its exit code."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(EdgeSerError):
    """Options that contradict each other or name nothing known."""

    exit_code = EXIT_USAGE
