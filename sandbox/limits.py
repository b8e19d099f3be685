"""Resource limits for sandboxed commands: rlimits, a pids cgroup, and a process-count watchdog.

How the process limit holds (see README.md):
- non-root: RLIMIT_NPROC, set to the user's current process count plus `max_processes`
  (the kernel counts every process of the real uid, not just the sandbox's);
- root ignores RLIMIT_NPROC, so: a pids cgroup (v1 `pids` hierarchy, or a cgroup v2 directory
  whose subtree has `pids` enabled) when we may create one; otherwise a watchdog that counts
  the sandbox's processes every `WATCH_INTERVAL` seconds and kills the whole sandbox past the
  limit. The watchdog cannot stop a fork bomb from briefly exceeding the limit; the wall-time
  limit and the pid namespace (killing its init kills every process in it) still bound it.

Every cgroup is removed once its tasks are gone (PidsCgroup.close), and empty ones that crashed
runs of this user left behind are swept (sweep_stale).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import resource
import stat
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

WATCH_INTERVAL = 0.1
CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Limits:
    """Per-command resource limits."""

    timeout: float = 600.0
    """Wall-time seconds; the whole process group (and pid namespace) is killed past it."""
    memory_bytes: int | None = 8 << 30
    """Address-space limit (RLIMIT_AS) per process; None for no limit. Virtual, not resident:
    runtimes that reserve large address ranges (JVM, V8 with wasm) may need more."""
    max_processes: int | None = 512
    """Processes the command may have at once; None for no limit."""
    output_bytes: int = 1_000_000
    """Output kept in memory: the first and last half of this many bytes."""


def _user_process_count(uid: int) -> int:
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError):
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += 1
    return count


def make_preexec(limits: Limits, cgroup: PidsCgroup | None) -> Callable[[], None]:
    """A preexec_fn that applies the rlimits and joins the cgroup (in the child, before exec)."""
    uid = os.getuid()
    nproc = None
    if limits.max_processes is not None and uid != 0:
        nproc = _user_process_count(uid) + limits.max_processes
    procs_file = str(cgroup.path / "cgroup.procs") if cgroup else None

    def preexec() -> None:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if limits.memory_bytes is not None:
            resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        if nproc is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        if procs_file is not None:
            fd = os.open(procs_file, os.O_WRONLY)
            try:
                os.write(fd, b"0")  # "0" moves the writing process itself
            finally:
                os.close(fd)

    return preexec


def _own_cgroup_dirs() -> list[Path]:
    """Directories under which we may create a pids cgroup, v2 first."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    dirs = []
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        if controllers == "":
            base = CGROUP_ROOT / rel.lstrip("/")
            if not (CGROUP_ROOT / "cgroup.controllers").exists():
                base = CGROUP_ROOT / "unified" / rel.lstrip("/")
            with contextlib.suppress(OSError):
                if "pids" in (base / "cgroup.subtree_control").read_text().split():
                    dirs.insert(0, base)
        elif "pids" in controllers.split(","):
            dirs.append(CGROUP_ROOT / controllers / rel.lstrip("/"))
    return dirs


# How long `close` keeps retrying the rmdir of a cgroup whose tasks are still dying, and
# how old an empty `evoagent-*` cgroup must be before another run sweeps it away (one this
# young may belong to a concurrent run that has not joined it yet).
REMOVE_SECONDS = 2.0
STALE_SECONDS = 60.0
_lock = threading.Lock()
_swept: set[Path] = set()
"""Parents whose stale cgroups this process has already swept."""
_leftovers: list[Path] = []
"""Cgroups `close` gave up on; retried at the next `create`."""


class PidsCgroup:
    """A throwaway pids cgroup with `pids.max` set; `create` returns None where we may not."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, max_processes: int) -> PidsCgroup | None:
        with _lock:
            _leftovers[:] = [stale for stale in _leftovers if not _try_rmdir(stale)]
        for parent in _own_cgroup_dirs():
            if not os.access(parent, os.W_OK):
                continue
            with _lock:
                sweep = parent not in _swept
                _swept.add(parent)
            if sweep:
                sweep_stale(parent)
            path = parent / f"evoagent-{uuid.uuid4().hex[:12]}"
            try:
                path.mkdir()
            except OSError:
                continue
            try:
                (path / "pids.max").write_text(str(max_processes))
                return cls(path)
            except OSError:
                with contextlib.suppress(OSError):
                    path.rmdir()
        return None

    def peak(self) -> int | None:
        try:
            return int((self.path / "pids.peak").read_text())
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        """Kill whatever is left in the cgroup and remove it. Killed tasks leave the cgroup
        only once they are fully gone, and until then rmdir fails with EBUSY: retry with a
        short backoff, for at most REMOVE_SECONDS (then a later `create` retries)."""
        deadline = time.monotonic() + REMOVE_SECONDS
        delay = 0.001
        while True:
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except FileNotFoundError:
                return
            except (OSError, ValueError):
                pids = []
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)
            if not pids and not _populated(self.path):
                try:
                    self.path.rmdir()
                    return
                except FileNotFoundError:
                    return
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        log.debug("sandbox: cannot remove cgroup %s: %s", self.path, exc)
                        return
            if time.monotonic() >= deadline:
                log.debug("sandbox: cgroup %s still busy; removing it later", self.path)
                with _lock:
                    _leftovers.append(self.path)
                return
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


def _populated(path: Path) -> bool:
    """cgroup v2 says whether any task (a dying one included) is left; v1 has no such file
    and relies on an empty `cgroup.procs` and the EBUSY retry."""
    try:
        events = (path / "cgroup.events").read_text().split()
    except OSError:
        return False
    return "populated" in events and events[events.index("populated") + 1] != "0"


def _try_rmdir(path: Path) -> bool:
    """Remove an empty cgroup; True when it is gone. A cgroup with tasks refuses (EBUSY)."""
    try:
        path.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def sweep_stale(parent: Path) -> None:
    """Remove the empty `evoagent-*` cgroups under `parent` that earlier runs of this user left
    behind (a crash, a kill -9). Only this user's, only those older than STALE_SECONDS, and
    rmdir itself refuses any that still holds a task."""
    uid, now = os.geteuid(), time.time()
    try:
        names = [name for name in os.listdir(parent) if name.startswith("evoagent-")]
    except OSError:
        return
    for name in names:
        path = parent / name
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode) and info.st_uid == uid and now - info.st_mtime > STALE_SECONDS:
            _try_rmdir(path)


def count_descendants(root_pid: int) -> int:
    """How many live processes descend from `root_pid` (itself included)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # Field 4 is the ppid; the command name (field 2) may contain spaces, so split after ')'.
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    count, stack = 0, [root_pid]
    while stack:
        pid = stack.pop()
        count += 1
        stack.extend(children.get(pid, ()))
    return count


def needs_watchdog(limits: Limits, cgroup: PidsCgroup | None) -> bool:
    return limits.max_processes is not None and os.getuid() == 0 and cgroup is None
