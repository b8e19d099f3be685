"""Resource limits for sandboxed commands: rlimits, a pids cgroup, and a process-count watchdog.

How the process limit holds (see README.md):
- non-root: RLIMIT_NPROC, set to the user's current process count plus `max_processes`
  (the kernel counts every process of the real uid, not just the sandbox's);
- root ignores RLIMIT_NPROC, so: a pids cgroup (v1 `pids` hierarchy, or a cgroup v2 directory
  whose subtree has `pids` enabled) when we may create one; otherwise a watchdog that counts
  the sandbox's processes every `WATCH_INTERVAL` seconds and kills the whole sandbox past the
  limit. The watchdog cannot stop a fork bomb from briefly exceeding the limit; the wall-time
  limit and the pid namespace (killing its init kills every process in it) still bound it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

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


class PidsCgroup:
    """A throwaway pids cgroup with `pids.max` set; `create` returns None where we may not."""

    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def create(cls, max_processes: int) -> PidsCgroup | None:
        for parent in _own_cgroup_dirs():
            if not os.access(parent, os.W_OK):
                continue
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
        """Kill whatever is left in the cgroup and remove it."""
        for _ in range(50):
            try:
                pids = [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
            except OSError:
                return
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, 9)
            os.sched_yield()
        with contextlib.suppress(OSError):
            self.path.rmdir()


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
