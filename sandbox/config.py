"""What a runner is allowed to touch, and with which limits."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from evoagent.sandbox.limits import Limits


@dataclass(frozen=True)
class SandboxConfig:
    """Settings shared by the isolated and unisolated runners."""

    writable: tuple[Path, ...] = ()
    """Directories the command may write (the workspace); everything else is read-only."""
    readable: tuple[Path, ...] = ()
    """Directories to show read-only even where a hidden path would cover them (a venv or
    the object store a workspace borrows from)."""
    hidden: tuple[Path, ...] = ()
    """Directories replaced by an empty tmpfs (the user's repository); HOME, /tmp and /run
    are always hidden."""
    allow_network: bool = False
    """Keep the host network; otherwise the command gets an empty network namespace."""
    limits: Limits = field(default_factory=Limits)
    """Wall time, memory, processes and output caps."""
    venv: Path | None = None
    """A virtualenv to activate: VIRTUAL_ENV is set and its bin/ put first on PATH."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra variables for every command; secret-looking names are dropped."""
