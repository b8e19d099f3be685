"""Run one process: its own session, output read incrementally and capped, limits enforced."""

from __future__ import annotations

import codecs
import contextlib
import logging
import math
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from evoagent.sandbox.limits import (
    WATCH_INTERVAL,
    Limits,
    PidsCgroup,
    count_descendants,
    make_preexec,
    needs_watchdog,
)
from evoagent.sandbox.protocols import CommandResult

log = logging.getLogger(__name__)

CHUNK = 1 << 16
DRAIN_GRACE = 1.0
FLUSH_INTERVAL = 0.2
"""Longest a piece of live output waits before it is handed on (see `LiveStream`)."""
STOP_NOTE = "\n[evoagent: live output stops here (output cap reached); the command goes on]\n"


class HeadTail:
    """Keeps the first and last `cap // 2` bytes of a stream, discarding the middle."""

    def __init__(self, cap: int):
        self.half = max(cap // 2, 1)
        self.head = bytearray()
        self.tail = bytearray()
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        room = self.half - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if not data:
            return
        self.tail += data
        excess = len(self.tail) - self.half
        if excess > 0:
            del self.tail[:excess]
            self.dropped += excess

    @property
    def truncated(self) -> bool:
        return self.dropped > 0

    def text(self) -> str:
        middle = f"\n[... {self.dropped} bytes of output omitted ...]\n" if self.dropped else ""
        return self.head.decode("utf-8", "replace") + middle + self.tail.decode("utf-8", "replace")


class LiveStream:
    """Hands a running command's output to `on_output` while it runs.

    Bytes are decoded as they come (a character split between reads is kept whole, invalid
    bytes become U+FFFD). After a quiet spell the first output goes at once; while output
    keeps coming it is merged into pieces at most `interval` apart, so a chatty command
    costs a few calls a second, not one per read. The pieces never total more than `cap`
    characters (the runner's output cap; a decoded character is never more than one byte):
    past it one note says so and nothing more is streamed; the final result keeps its own
    head and tail. A callback that raises stops the stream, never the command.
    """

    def __init__(self, on_output: Callable[[str], None], cap: int,
                 interval: float = FLUSH_INTERVAL):
        self.on_output = on_output
        self.interval = interval
        self.room = max(cap - len(STOP_NOTE), 0)
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pending: list[str] = []
        self.last = -math.inf
        self.stopped = False

    def feed(self, data: bytes) -> None:
        if self.stopped:
            return
        part = data[: self.room]
        self.room -= len(part)
        text = self.decoder.decode(part)
        if text:
            self.pending.append(text)
        if len(part) < len(data):
            self.pending += [self.decoder.decode(b"", final=True), STOP_NOTE]
            self._send()
            self.stopped = True
        elif time.monotonic() - self.last >= self.interval:
            self._send()

    def wait(self) -> float:
        """Seconds until waiting output is due (inf when nothing waits)."""
        if not self.pending or self.stopped:
            return math.inf
        return max(self.last + self.interval - time.monotonic(), 0.0)

    def flush_due(self) -> None:
        if self.wait() <= 0:
            self._send()

    def close(self) -> None:
        """The command is over: send what is left, an incomplete character included."""
        if not self.stopped:
            self.pending.append(self.decoder.decode(b"", final=True))
            self._send()
            self.stopped = True

    def _send(self) -> None:
        text = "".join(self.pending)
        self.pending.clear()
        if not text:
            return
        self.last = time.monotonic()
        try:
            self.on_output(text)
        except Exception:  # the front end's failure must not cost the command
            log.exception("live output: the receiver failed; streaming stopped")
            self.stopped = True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def execute(
    argv: Sequence[str],
    *,
    display: str,
    cwd: Path | None,
    env: dict[str, str],
    limits: Limits,
    isolated: bool,
    on_output: Callable[[str], None] | None = None,
) -> CommandResult:
    """Run `argv` in a new session under `limits` and return what happened.

    When the main process exits, whatever is left in its process group is killed, so a
    background child cannot hold the output pipe open until the timeout. `on_output` gets
    the output while it comes (`LiveStream`: decoded, merged, capped); the result is the
    same with or without it.
    """
    cgroup = PidsCgroup.create(limits.max_processes) if limits.max_processes else None
    watch = needs_watchdog(limits, cgroup)
    capture = HeadTail(limits.output_bytes)
    stream = LiveStream(on_output, limits.output_bytes) if on_output is not None else None
    note = ""
    start = time.monotonic()
    deadline = start + limits.timeout
    timed_out = False
    try:
        try:
            proc = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=make_preexec(limits, cgroup),
            )
        except OSError as exc:  # missing program or cwd: report it like a shell would
            return CommandResult(display, 127, f"{exc}\n", False, 0.0, False, isolated)
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            next_watch = start + WATCH_INTERVAL
            exited_at: float | None = None
            while True:
                now = time.monotonic()
                if exited_at is None and proc.poll() is not None:
                    exited_at = now
                    _kill_group(proc.pid)
                if exited_at is not None and now - exited_at > DRAIN_GRACE:
                    break
                if exited_at is None and now >= deadline:
                    timed_out = True
                    note = f"\n[evoagent: killed after the {limits.timeout:g} s time limit]\n"
                    _kill_group(proc.pid)
                    proc.wait()
                    exited_at = time.monotonic()
                    continue
                if watch and exited_at is None and now >= next_watch:
                    next_watch = now + WATCH_INTERVAL
                    if count_descendants(proc.pid) > limits.max_processes + 1:
                        note = f"\n[evoagent: killed past {limits.max_processes} processes]\n"
                        _kill_group(proc.pid)
                        proc.wait()
                        exited_at = time.monotonic()
                        continue
                wait = min(max(deadline - now, 0), WATCH_INTERVAL)
                if stream is not None:
                    wait = min(wait, stream.wait())
                if selector.select(wait):
                    data = os.read(fd, CHUNK)
                    if not data:
                        break
                    capture.feed(data)
                    if stream is not None:
                        stream.feed(data)
                if stream is not None:
                    stream.flush_due()
        if stream is not None:
            stream.close()
        proc.stdout.close()
        exit_code = proc.wait()
    finally:
        if cgroup is not None:
            cgroup.close()
    output = capture.text() + note
    return CommandResult(
        command=display,
        exit_code=exit_code,
        output=output,
        truncated=capture.truncated,
        seconds=time.monotonic() - start,
        timed_out=timed_out,
        isolated=isolated,
    )
