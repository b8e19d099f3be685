"""The sandbox's seams: what a command runner returns and what it must provide."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one command."""

    command: str
    """The command as given (a list is shell-joined)."""
    exit_code: int
    """The process's exit code; negative (-signal) when it was killed by a signal."""
    output: str
    """stdout and stderr interleaved; head and tail only when `truncated`."""
    truncated: bool
    """True when output passed the cap and its middle was discarded."""
    seconds: float
    """Wall time from start to the last byte read."""
    timed_out: bool
    """True when the wall-time limit killed the command."""
    isolated: bool
    """True when the command ran under bubblewrap; False for the unisolated fallback."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


@runtime_checkable
class Runner(Protocol):
    """Runs a command somewhere and reports a CommandResult."""

    isolated: bool

    def run(
        self,
        command: str | Sequence[str],
        cwd: Path,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        writable: Sequence[Path] = (),
        on_output: Callable[[str], None] | None = None,
    ) -> CommandResult:
        """Run `command` (a string goes to `bash -c`) in `cwd`.

        `timeout` overrides the runner's wall-time limit; `env` adds variables to the scrubbed
        environment (secret-looking names are still dropped); `writable` adds directories the
        command may write for this call only (e.g. where a JUnit report goes). `on_output`
        gets the combined output while the command runs, in the calling thread: decoded
        pieces at most ~0.2 s apart while output comes, no more than the output cap in all
        (then one note says the stream stopped). The result is the same with or without it.
        """
        ...
