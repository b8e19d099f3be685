"""What a runner is allowed to touch, and with which limits."""

from __future__ import annotations

import os
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
    run_as: str | None = None
    """Who commands run as when evoagent runs as root: `uid[:gid]` or a user name; default
    EVOAGENT_SANDBOX_USER, else 65534 (nobody); `0` keeps root (see run_as.py)."""
    ro_binds: tuple[tuple[Path, Path], ...] = ()
    """(source, destination) pairs shown read-only, mounted after the writable directories so
    a destination inside the workspace wins (a workspace's git directory at `<tree>/.git`).
    A missing destination is created as a mount point; one that is a symlink, lies beyond one
    or is of another type than its source is not mounted (the command runs without it and
    its output says so). The unisolated runner ignores them. A destination inside a view's
    source is mounted at the view's place (`SandboxConfig.inside`)."""
    views: tuple[tuple[Path, Path], ...] = ()
    """(source, destination) pairs: a writable directory shown at another path (a workspace's
    tree at the repository's own path, so editable installs, `.pth` files, child interpreters
    and absolute paths in configs find the change where they expect the repository). The
    destination replaces whatever is there, hidden paths included. A command's working
    directory inside a source runs at the matching place. The unisolated runner runs at the
    source itself."""

    def inside(self, path: Path) -> Path:
        """Where host `path` is seen inside the sandbox (itself unless a view moves it)."""
        full = Path(os.path.abspath(path))
        for source, destination in self.views:
            source = Path(os.path.abspath(source))
            if full.is_relative_to(source):
                return Path(os.path.abspath(destination)) / full.relative_to(source)
        return full
