"""Kill the sandboxed commands this process runs for one workspace: what a session's
`cancel()` repeats until the request has unwound. Found through /proc, so nothing else on
the machine is touched: only our direct children that lead their own session."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path


def kill_sandboxed(workspace: Path) -> int:
    """Kill the process groups of this process's sandboxed commands running for `workspace`
    (each runs in its own session: a direct child that leads its group); returns how many."""
    proc = Path("/proc")
    if not proc.is_dir():
        return 0
    me, where, killed = os.getpid(), str(workspace), 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2:].split()
            ppid, pgid, sid = int(fields[1]), int(fields[2]), int(fields[3])
            if ppid != me or sid != pid or pgid != pid:
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            cwd = os.readlink(entry / "cwd")
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile, or not ours to read
        if where in cmdline or cwd == where or cwd.startswith(where + os.sep):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
                killed += 1
    return killed
