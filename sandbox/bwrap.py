"""Run commands under bubblewrap: read-only system, writable workspace, nothing else."""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from evoagent.sandbox.capture import execute
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.env import sandbox_env
from evoagent.sandbox.limits import Limits
from evoagent.sandbox.protocols import CommandResult

# Sockets that hand out power over the host even without a network namespace.
HOST_SOCKETS = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd/containerd.sock",
    "/run/podman/podman.sock",
)


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def shell_argv(command: str | Sequence[str]) -> tuple[list[str], str]:
    """The argv to execute and its display form; a string runs under bash (sh if absent)."""
    if isinstance(command, str):
        shell = "/bin/bash" if Path("/bin/bash").exists() else "/bin/sh"
        return [shell, "-c", command], command
    return list(command), shlex.join(command)


def call_settings(
    config: SandboxConfig, timeout: float | None, env: dict[str, str] | None
) -> tuple[dict[str, str], Limits]:
    """The scrubbed environment and the limits of one call (both runners use this)."""
    homes = home_dirs()
    full_env = sandbox_env(
        homes[0] if homes else Path("/tmp"), config.venv, {**config.env, **(env or {})}
    )
    limits = config.limits if timeout is None else replace(config.limits, timeout=timeout)
    return full_env, limits


def home_dirs() -> list[Path]:
    """HOME and the account's home directory: both are hidden behind a tmpfs."""
    homes = [Path(os.environ.get("HOME", "/")).resolve()]
    with contextlib.suppress(KeyError):
        homes.append(Path(pwd.getpwuid(os.getuid()).pw_dir).resolve())
    return [home for home in dict.fromkeys(homes) if home != Path("/")]


# Tool installs under a home directory that hold no credentials; shown read-only so pyenv,
# rustup, nvm, uv and Go toolchains keep working behind the tmpfs home.
TOOLCHAIN_DIRS = (
    ".pyenv",
    ".rustup",
    ".cargo/bin",
    ".cargo/registry",
    ".nvm",
    ".local/bin",
    ".local/share/uv/python",
    "go/pkg/mod",
    "sdk",
)


def toolchain_paths(homes: Sequence[Path], path_var: str, venv: Path | None) -> list[Path]:
    """Directories under a hidden root (a home, /tmp) that commands need: PATH entries, the
    venv's base Python, the interpreter running evoagent (a checkout in /tmp keeps its venv
    there) and the known toolchain roots."""
    roots = [*homes, Path("/tmp").resolve(), Path("/var/tmp").resolve()]
    found = [Path(entry).resolve() for entry in path_var.split(":") if entry]
    found += [Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
    found += [home / rel for home in homes for rel in TOOLCHAIN_DIRS]
    if venv is not None:
        found.append(Path(venv, "bin", "python").resolve().parent.parent)
        cfg = Path(venv, "pyvenv.cfg")
        if cfg.is_file():
            for line in cfg.read_text().splitlines():
                key, _, value = line.partition("=")
                if key.strip() == "home" and value.strip():
                    found.append(Path(value.strip()).resolve().parent)
    return [
        p
        for p in dict.fromkeys(found)
        if p.is_dir() and any(p.is_relative_to(r) and p != r for r in roots)
    ]


def _depth(path: Path) -> int:
    return len(path.parts)


class BwrapRunner:
    """The isolated runner. See README.md for what it hides and which limits hold."""

    isolated = True

    def __init__(self, config: SandboxConfig | None = None, bwrap: str | None = None):
        self.config = config or SandboxConfig()
        self.bwrap = bwrap or bwrap_path()
        if self.bwrap is None:
            raise RuntimeError("bubblewrap (bwrap) is not installed")

    def argv(self, inner: Sequence[str], cwd: Path, writable: Sequence[Path] = ()) -> list[str]:
        """The full bwrap command line for `inner` (exposed for tests and debugging)."""
        config = self.config
        homes = home_dirs()
        hidden = ["/tmp", "/var/tmp", *map(str, homes)]
        hidden.append("/run" if not config.allow_network else "/run/user")
        hidden += [str(Path(p).resolve()) for p in config.hidden]
        args = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for path in sorted(dict.fromkeys(hidden), key=lambda p: _depth(Path(p))):
            if os.path.isdir(path):
                args += ["--tmpfs", path]
        if config.allow_network:
            for sock in HOST_SOCKETS:
                if os.path.exists(sock):
                    args += ["--ro-bind", "/dev/null", sock]
        path_var = {**os.environ, **config.env}.get("PATH", "")
        shown = [*config.readable, *toolchain_paths(homes, path_var, config.venv)]
        binds = [("--ro-bind", Path(p).resolve()) for p in shown]
        if config.venv is not None:
            binds.append(("--ro-bind", Path(config.venv).resolve()))
        binds += [("--bind", Path(p).resolve()) for p in (*config.writable, *writable)]
        for flag, path in sorted(binds, key=lambda item: _depth(item[1])):
            if path.exists():
                args += [flag, str(path), str(path)]
        for path in config.hidden:  # the user's repository: hidden and not writable either
            if Path(path).is_dir():
                args += ["--remount-ro", str(Path(path).resolve())]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not config.allow_network:
            args.append("--unshare-net")
        args += ["--die-with-parent", "--new-session"]
        if os.getuid() == 0:
            # Root keeps every capability inside by default, enough to remount / read-write.
            args += ["--cap-drop", "ALL"]
        args += ["--chdir", str(Path(cwd).resolve()), "--", *inner]
        return args

    def run(
        self,
        command: str | Sequence[str],
        cwd: Path,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        writable: Sequence[Path] = (),
    ) -> CommandResult:
        inner, display = shell_argv(command)
        full_env, limits = call_settings(self.config, timeout, env)
        return execute(
            self.argv(inner, cwd, writable),
            display=display,
            cwd=None,
            env=full_env,
            limits=limits,
            isolated=True,
        )
