"""Errors a user can cause: one clear line and a documented exit code, never a traceback."""

from __future__ import annotations

# Exit codes (README "Exit codes"): shared by every command, `fix` documents all six.
EXIT_OK = 0
EXIT_NOT_FIXED = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_BUDGET = 4
EXIT_NO_VERDICT = 5
"""`fix`: the tests could not run, so nothing proves or disproves the patch."""


class EvoError(Exception):
    """A user-facing failure: `message` is printed as one line, `code` is the exit code."""

    def __init__(self, message: str, code: int = EXIT_USAGE):
        super().__init__(message)
        self.message = message
        self.code = code


class NotARepository(EvoError):
    def __init__(self, where: str):
        super().__init__(f"not a git repository (or any parent up to /): {where}", EXIT_USAGE)
