"""The unisolated fallback: same limits and scrubbed environment, no filesystem or network
isolation. It warns on every construction; `make_runner(strict=True)` refuses it instead."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from evoagent.sandbox.bwrap import BwrapRunner, bwrap_path, call_settings, shell_argv
from evoagent.sandbox.capture import execute
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.protocols import CommandResult, Runner

log = logging.getLogger(__name__)

UNISOLATED_WARNING = (
    "bubblewrap (bwrap) not found: commands run UNISOLATED, with full access to your files, "
    "network and credentials on disk. Install bubblewrap, or pass strict to refuse."
)


class SandboxUnavailable(RuntimeError):
    """Isolation was required (strict) but bubblewrap is not available."""


class UnisolatedWarning(UserWarning):
    pass


class LocalRunner:
    """Runs commands directly on the host (isolated=False in every result). Nothing can be
    hidden or bound without a mount namespace: `hidden`, `readable` and `ro_binds` are
    ignored, and commands run as the calling user (root stays root)."""

    isolated = False

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        warnings.warn(UNISOLATED_WARNING, UnisolatedWarning, stacklevel=2)
        log.warning(UNISOLATED_WARNING)

    def run(
        self,
        command: str | Sequence[str],
        cwd: Path,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        writable: Sequence[Path] = (),
        on_output: Callable[[str], None] | None = None,
    ) -> CommandResult:
        argv, display = shell_argv(command)
        full_env, limits = call_settings(self.config, timeout, env)
        return execute(
            argv, display=display, cwd=Path(cwd), env=full_env, limits=limits, isolated=False,
            on_output=on_output,
        )


def make_runner(config: SandboxConfig | None = None, strict: bool = False) -> Runner:
    """The bubblewrap runner when bwrap exists; otherwise the unisolated one (with a loud
    warning), or SandboxUnavailable when `strict`."""
    if bwrap_path() is not None:
        return BwrapRunner(config)
    if strict:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is required in strict mode but was not found on PATH; "
            "install it (e.g. apt-get install bubblewrap)"
        )
    return LocalRunner(config)
