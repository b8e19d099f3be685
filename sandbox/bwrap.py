"""Run commands under bubblewrap: read-only system, writable workspace, nothing else."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shlex
import shutil
import stat
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from evoagent.sandbox.acl import AclUnsupported, Granter
from evoagent.sandbox.capture import execute
from evoagent.sandbox.config import SandboxConfig
from evoagent.sandbox.env import sandbox_env
from evoagent.sandbox.limits import Limits
from evoagent.sandbox.protocols import CommandResult
from evoagent.sandbox.run_as import (
    SandboxUser,
    cap_args,
    sandbox_user,
    setpriv_argv,
    still_root,
    usable_setpriv,
)
from evoagent.sandbox.toolchains import is_virtualenv, toolchain_paths

log = logging.getLogger(__name__)

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


def ro_bind_plan(
    pairs: Sequence[tuple[Path, Path]],
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """The (source, destination) pairs that are safe to mount read-only, and a note for each
    one that is not. bwrap follows a symlink at (or on the way to) a destination, and the
    sandbox may have planted one in its workspace: mounting there could cover any directory it
    points to. Such a bind is left out rather than failing the call, so the command that
    repairs the workspace can still run; nothing outside is exposed either way."""
    safe: list[tuple[Path, Path]] = []
    notes: list[str] = []
    for source, dest in pairs:
        source, dest = Path(source).resolve(), Path(os.path.abspath(dest))
        if not source.exists():
            continue
        problem = _destination_problem(source, dest)
        if problem:
            notes.append(f"[evoagent: {dest} {problem}: {source} was not mounted there]")
        else:
            safe.append((source, dest))
    return safe, notes


def _destination_problem(source: Path, dest: Path) -> str | None:
    """Why `dest` may not receive a bind of `source` (None: it may). Each existing component
    is checked without following links; missing ones are created by bwrap as mount points."""
    if len(dest.parts) < 2:
        return "is the root directory"
    current, mode = Path(dest.anchor), 0
    for index, part in enumerate(dest.parts[1:], start=1):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"cannot be checked ({exc.strerror})"
        if stat.S_ISLNK(mode):
            return "is a symlink or lies beyond one"
        if index < len(dest.parts) - 1 and not stat.S_ISDIR(mode):
            return "lies beyond a file that is not a directory"
    if stat.S_ISDIR(mode) != source.is_dir():
        return "is not of the same type as its source"
    return None


def _mount_point_dirs(dest: Path, tmpfs: Sequence[Path], bound: Sequence[Path]) -> list[str]:
    """`--dir` for each parent of a bind destination that lies in a hiding tmpfs: bwrap would
    create it mode 0700, which only root may cross. A parent inside an earlier bind is left
    alone (it exists there, or bwrap could not create it anyway)."""
    args: list[str] = []
    for parent in reversed(dest.parents):
        holders = [(m, True) for m in bound if parent.is_relative_to(m)]  # a tie: the bind
        holders += [(m, False) for m in tmpfs if parent.is_relative_to(m)]
        if not holders:
            continue
        innermost, is_bind = max(holders, key=lambda item: _depth(item[0]))
        if parent != innermost and not is_bind:
            args += ["--dir", str(parent)]
    return args


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

    def argv(
        self,
        inner: Sequence[str],
        cwd: Path,
        writable: Sequence[Path] = (),
        user: SandboxUser | None = None,
        setpriv: str = "setpriv",
    ) -> list[str]:
        """The full bwrap command line for `inner`, run as `user` when given (exposed for
        tests and debugging)."""
        config = self.config
        homes = home_dirs()
        hidden = ["/tmp", "/var/tmp", *map(str, homes)]
        hidden.append("/run" if not config.allow_network else "/run/user")
        hidden += [str(Path(p).resolve()) for p in config.hidden]
        # The unprivileged user needs what root got for free: a writable /tmp, HOME, /dev/shm.
        perms = {"/tmp": "1777", "/var/tmp": "1777", **{str(h): "0777" for h in homes}}
        args = [self.bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        if user is not None:
            args += ["--perms", "1777", "--tmpfs", "/dev/shm"]
        for path in sorted(dict.fromkeys(hidden), key=lambda p: _depth(Path(p))):
            if os.path.isdir(path):
                if user is not None and path in perms:
                    args += ["--perms", perms[path]]
                args += ["--tmpfs", path]
        if config.allow_network:
            for sock in HOST_SOCKETS:
                if os.path.exists(sock):
                    args += ["--ro-bind", "/dev/null", sock]
        path_var = {**os.environ, **config.env}.get("PATH", "")
        covered = [*homes, Path("/tmp"), Path("/var/tmp"), *config.hidden]
        shown = [*config.readable, *toolchain_paths(homes, path_var, config.venv, config.hidden)]
        # (flag, source, destination inside); sorted by destination depth, so a deeper bind
        # (the venv inside a repository shown by a view) lands on top of a shallower one.
        binds = [("--ro-bind", p, p) for p in (Path(x).resolve() for x in shown)]
        if config.venv is not None and is_virtualenv(config.venv, covered):
            venv = Path(config.venv).resolve()
            binds.append(("--ro-bind", venv, venv))
        binds += [("--bind", p, p) for p in (Path(x).resolve() for x in (*config.writable, *writable))]
        binds += [("--bind", Path(s).resolve(), Path(os.path.abspath(d))) for s, d in config.views]
        tmpfs = [Path(h) for h in hidden if os.path.isdir(h)]
        bound: list[Path] = []
        for flag, source, dest in sorted(binds, key=lambda item: _depth(item[2])):
            if source.exists():
                if user is not None:
                    args += _mount_point_dirs(dest, tmpfs, bound)
                args += [flag, str(source), str(dest)]
                bound.append(dest)
        for source, dest in ro_bind_plan(config.ro_binds)[0]:
            dest = config.inside(dest)
            if user is not None:
                args += _mount_point_dirs(dest, tmpfs, bound)
            args += ["--ro-bind", str(source), str(dest)]
        shown_at = {Path(os.path.abspath(d)) for _, d in config.views}
        for path in config.hidden:  # the user's repository: hidden and not writable either
            if Path(path).is_dir() and Path(path).resolve() not in shown_at:
                args += ["--remount-ro", str(Path(path).resolve())]
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        if not config.allow_network:
            args.append("--unshare-net")
        args += ["--die-with-parent", "--new-session"]
        if user is not None:
            # Only what setpriv needs to become `user`; it drops them all before the command.
            args += cap_args()
        elif os.getuid() == 0:
            # Root keeps every capability inside by default, enough to remount / read-write.
            args += ["--cap-drop", "ALL"]
        args += ["--chdir", str(config.inside(Path(cwd).resolve())), "--"]
        if user is not None:
            args += setpriv_argv(setpriv, user)
        return [*args, *inner]

    def run(
        self,
        command: str | Sequence[str],
        cwd: Path,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        writable: Sequence[Path] = (),
        on_output: Callable[[str], None] | None = None,
    ) -> CommandResult:
        inner, display = shell_argv(command)
        full_env, limits = call_settings(self.config, timeout, env)
        user, setpriv = self.drop_to(writable)
        notes = ro_bind_plan(self.config.ro_binds)[1]  # before the command may change them
        for note in notes:
            log.warning("sandbox: %s", note.strip("[]"))
        if user is not None:
            # git refuses a repository owned by another user; here every one is the host's.
            # (Command-line scope, the only one besides system/global that may set this.)
            given = full_env.get("GIT_CONFIG_PARAMETERS")
            full_env["GIT_CONFIG_PARAMETERS"] = " ".join(filter(None, ["'safe.directory=*'", given]))
        result = execute(
            self.argv(inner, cwd, writable, user, setpriv or "setpriv"),
            display=display,
            cwd=None,
            env=full_env,
            limits=limits,
            isolated=True,
            on_output=on_output,
        )
        if notes:
            result = replace(result, output=result.output + "\n" + "\n".join(notes) + "\n")
        return result

    def drop_to(self, writable: Sequence[Path] = ()) -> tuple[SandboxUser | None, str | None]:
        """The user a call runs as (None: the caller's uid) and setpriv's path. As root,
        the writable directories are first granted to that user through ACLs; where that or
        setpriv is impossible, the call runs as root after a one-time warning. Public for a
        caller that spawns the process itself from `argv` (an MCP server, agent/mcp_tools.py)."""
        user = sandbox_user(self.config.run_as)
        if user is None:
            return None, None
        setpriv = usable_setpriv(str(self.bwrap), user)
        if setpriv is None:
            return None, None
        skip = [Path(os.path.abspath(dest)) for _, dest in self.config.ro_binds]
        views = [source for source, _ in self.config.views]
        for root in (*self.config.writable, *views, *writable):
            if not Path(root).is_dir():
                continue
            try:
                GRANTER.grant(Path(root), user.uid, skip)
            except AclUnsupported as exc:
                if str(root) not in _acl_warned:
                    _acl_warned.add(str(root))
                    still_root(f"{root} cannot hold POSIX ACLs ({exc.strerror})")
                return None, None
        return user, setpriv


GRANTER = Granter()
_acl_warned: set[str] = set()
