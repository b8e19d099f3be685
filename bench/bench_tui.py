"""How long until `evoagent` (the app) shows its first frame, next to `python -c pass`?

    .venv/bin/python bench/bench_tui.py [--runs 5]

Builds a small git repository in a tmp dir, opens one tmux pane there (120x36), and for
each run types the command into the pane and polls `tmux capture-pane` until the app's
status bar (" │ mode ") is on screen; the app is then quit with Ctrl+Q. The baseline types
`python -c pass; echo <marker>` into the same pane and waits for the marker. Prints the
median, min and max of each. Target: first frame <= 1 s (litellm and lancedb load in
background workers, after it). Needs tmux. Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TARGET_SECONDS = 1.0
STATUS_MARK = " │ mode "
POLL_S = 0.01
TIMEOUT_S = 30.0


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, check=True).stdout


def make_repo(root: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@b",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@b"}
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True, env=env)
    (root / "calc.py").write_text("def double(x):\n    return x * 2\n")
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(root), "commit", "-qm", "Add double"], check=True, env=env)


def wait_for(session: str, text: str, timeout: float = TIMEOUT_S) -> bool:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if text in tmux("capture-pane", "-p", "-t", session):
            return True
        time.sleep(POLL_S)
    return False


def clear(session: str) -> None:
    tmux("send-keys", "-t", session, "clear", "Enter")
    time.sleep(0.3)
    tmux("clear-history", "-t", session)


def wait_for_line(session: str, text: str, timeout: float = TIMEOUT_S) -> float | None:
    """Seconds until a line of the pane is exactly `text`, or None."""
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        lines = tmux("capture-pane", "-p", "-t", session).splitlines()
        if any(line.strip() == text for line in lines):
            return time.perf_counter() - start
        time.sleep(POLL_S)
    return None


def time_app(session: str, command: str) -> tuple[float, float]:
    """(seconds to the first frame, seconds from Ctrl+Q to the shell prompt)."""
    clear(session)
    marker = f"QUIT-{uuid.uuid4().hex[:6]}"
    start = time.perf_counter()
    tmux("send-keys", "-t", session, f"{command}; echo {marker}", "Enter")
    if not wait_for(session, STATUS_MARK):
        raise SystemExit(f"no status bar within {TIMEOUT_S}s:\n"
                         + tmux("capture-pane", "-p", "-t", session))
    elapsed = time.perf_counter() - start
    time.sleep(0.5)
    tmux("send-keys", "-t", session, "C-q")
    quit_seconds = wait_for_line(session, marker)
    if quit_seconds is None:
        raise SystemExit("the app did not quit on Ctrl+Q")
    return elapsed, quit_seconds


def time_python(session: str, python: str) -> float:
    clear(session)
    marker = f"DONE-{uuid.uuid4().hex[:6]}"
    tmux("send-keys", "-t", session, f"{python} -c pass; echo {marker}", "Enter")
    # The typed command line also contains the marker: wait for it on a line of its own.
    seconds = wait_for_line(session, marker)
    if seconds is None:
        raise SystemExit("python -c pass did not finish")
    return seconds


def describe(name: str, times: list[float]) -> str:
    return (f"{name:<22} median {statistics.median(times):.3f}s  "
            f"min {min(times):.3f}s  max {max(times):.3f}s  (n={len(times)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        raise SystemExit("tmux is not installed")
    bindir = Path(sys.executable).parent
    evoagent = bindir / "evoagent"
    if not evoagent.exists():
        raise SystemExit(f"{evoagent} not found: install the package in this venv")
    with tempfile.TemporaryDirectory(prefix="bench-tui-") as tmp:
        repo = Path(tmp) / "repo"
        make_repo(repo)
        session = f"bench-tui-{uuid.uuid4().hex[:6]}"
        tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", "-c", str(repo),
             "env", "-u", "TMUX", "PS1=$ ", "bash", "--norc", "--noprofile")
        try:
            time.sleep(0.5)
            time_app(session, str(evoagent))  # warm-up: page cache, first .evoagent/ setup
            app_runs = [time_app(session, str(evoagent)) for _ in range(args.runs)]
            py_times = [time_python(session, sys.executable) for _ in range(args.runs)]
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    app_times = [first for first, _ in app_runs]
    print(describe("evoagent first frame", app_times))
    print(describe("Ctrl+Q to prompt", [quit for _, quit in app_runs]))
    print(describe("python -c pass", py_times))
    median = statistics.median(app_times)
    verdict = "within" if median <= TARGET_SECONDS else "OVER"
    print(f"first frame median {median:.3f}s: {verdict} the {TARGET_SECONDS:.1f}s target "
          f"({median - statistics.median(py_times):.3f}s over a bare interpreter start)")


if __name__ == "__main__":
    main()
