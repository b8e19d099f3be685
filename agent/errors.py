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


EXIT_INTERRUPTED = 130
"""Ctrl-C, as shells report SIGINT."""

EXIT_BY_STATUS = {
    "fixed": EXIT_OK,
    "answered": EXIT_OK,
    "not_fixed": EXIT_NOT_FIXED,
    "not_verified": EXIT_NO_VERDICT,
    "tests_did_not_run": EXIT_NO_VERDICT,
    "budget_exhausted": EXIT_BUDGET,
    "interrupted": EXIT_INTERRUPTED,
    "cancelled": EXIT_INTERRUPTED,
}
"""A run's exit code by its status (an error's own code wins)."""


class RunStopped(EvoError):
    """The model failed for good during a run; the best attempt's `patch` (maybe "") was
    written to `run_dir` and can still be scored or reviewed."""

    def __init__(self, message: str, code: int, patch: str = "", run_dir: object = None):
        super().__init__(message, code)
        self.patch = patch
        self.run_dir = run_dir
